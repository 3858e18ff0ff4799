"""One env-driven configuration (CONTRACT.md lists every setting).

`load_config` reads the environment once at app creation; tests pass a mapping to `create_app`
that overrides what they need.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

TRUE = {"1", "true", "yes", "on"}


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value == "" else value.strip().lower() in TRUE


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if not value else int(value)


def _secret_key(instance: Path) -> str:
    """A key generated once and kept in instance/secret_key, so sessions and mailed links survive
    restarts without anyone having to configure a secret on a first start."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start at once, exactly one writes and both read the same key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def trusted_hosts(base_url: str, extra: str | None) -> list[str]:
    """The Host headers answered: BASE_URL's host, loopback (make run, health checks on the
    machine itself) and TRUSTED_HOSTS (space or comma separated). Any other Host gets 400."""
    hosts = [urlsplit(base_url).hostname or "", "localhost", "127.0.0.1"]
    hosts += [h for h in (extra or "").replace(",", " ").split() if h]
    return list(dict.fromkeys(h for h in hosts if h))


def load_config(instance: Path) -> dict:
    port = env_int("PORT", 8000)
    env = os.environ.get
    base_url = (env("BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/")
    return {
        "SECRET_KEY": env("SECRET_KEY") or _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL") or f"sqlite:///{instance / 'seminar.db'}",
        "BASE_URL": base_url,
        # Flask refuses any other Host header (400): links are never built from a forged one.
        "PORT": port,
        "TIMEZONE": env("TIMEZONE") or "Europe/Amsterdam",
        "ORGANISATION_NAME": env("ORGANISATION_NAME") or "Brancheorganisatie Maatschappelijke Kinderopvang",
        # Mail: unset MAIL_SERVER means "write .eml files under instance/mail/".
        "MAIL_SERVER": env("MAIL_SERVER") or None,
        "MAIL_PORT": env_int("MAIL_PORT", 25),
        "MAIL_USE_TLS": env_bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": env_bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": env("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER") or "BMK Seminars <seminars@bmk.example>",
        "MAIL_TIMEOUT": env_int("MAIL_TIMEOUT", 30),
        # The relay's limits (docs/DEPLOY.md has them for Exchange Online, SES, Postmark, Postfix):
        # connections all workers together may hold, and its quota in Flask-Limiter's notation
        # (e.g. "30/minute;10000/day"; unset: no known limit, the pace is found by its answers).
        "MAIL_MAX_CONNECTIONS": env_int("MAIL_MAX_CONNECTIONS", 3),
        "MAIL_RATE_LIMIT": env("MAIL_RATE_LIMIT") or None,
        "MAIL_RELAY_REDIS_PREFIX": env("MAIL_RELAY_REDIS_PREFIX") or "seminar:mail-relay",
        # Flask-Mail suppresses sending when app.testing; our tests talk to a real SMTP server.
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_DIR": str(instance / "mail"),
        # Video platforms.
        "VIDEO_PROVIDER": (env("VIDEO_PROVIDER") or "jitsi").lower(),
        "JITSI_BASE_URL": (env("JITSI_BASE_URL") or "https://meet.jit.si").rstrip("/"),
        "JITSI_APP_ID": env("JITSI_APP_ID") or None,
        "JITSI_APP_SECRET": env("JITSI_APP_SECRET") or None,
        "ZOOM_ACCOUNT_ID": env("ZOOM_ACCOUNT_ID") or None,
        "ZOOM_CLIENT_ID": env("ZOOM_CLIENT_ID") or None,
        "ZOOM_CLIENT_SECRET": env("ZOOM_CLIENT_SECRET") or None,
        "ZOOM_USER_ID": env("ZOOM_USER_ID") or "me",
        "ZOOM_API_BASE": (env("ZOOM_API_BASE") or "https://api.zoom.us/v2").rstrip("/"),
        "ZOOM_OAUTH_URL": env("ZOOM_OAUTH_URL") or "https://zoom.us/oauth/token",
        "ZOOM_WEBHOOK_SECRET_TOKEN": env("ZOOM_WEBHOOK_SECRET_TOKEN") or None,
        "ZOOM_MEETING_KIND": (env("ZOOM_MEETING_KIND") or "meeting").lower(),
        "TEAMS_TENANT_ID": env("TEAMS_TENANT_ID") or None,
        "TEAMS_CLIENT_ID": env("TEAMS_CLIENT_ID") or None,
        "TEAMS_CLIENT_SECRET": env("TEAMS_CLIENT_SECRET") or None,
        "TEAMS_USER_ID": env("TEAMS_USER_ID") or None,
        "GRAPH_API_BASE": (env("GRAPH_API_BASE") or "https://graph.microsoft.com/v1.0").rstrip("/"),
        "GRAPH_TOKEN_URL": env("GRAPH_TOKEN_URL") or None,
        # A platform's short "wait" (a rate limit's Retry-After up to this many seconds, one quick
        # second try after a 5xx) is waited out by the worker within a batch, up to
        # VIDEO_WAIT_BUDGET seconds per batch; longer waits hand the jobs back to the queue.
        "VIDEO_SHORT_WAIT": float(env("VIDEO_SHORT_WAIT") or 2.0),
        "VIDEO_WAIT_BUDGET": float(env("VIDEO_WAIT_BUDGET") or 15.0),
        # Abuse protection.
        "RATELIMIT_ENABLED": env_bool("RATELIMIT_ENABLED", True),
        # Unset: the counters live in the database, shared by every process (seminar/ratelimits.py);
        # `memory://` counts per process, `redis://…` in Redis.
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI") or "seminar-db://",
        # Flask-Limiter limits: per client address, and per e-mail address for sign-ups.
        "SIGNUP_RATE_LIMIT": env("SIGNUP_RATE_LIMIT") or "10 per minute;60 per hour",
        "SIGNUP_ADDRESS_RATE_LIMIT": env("SIGNUP_ADDRESS_RATE_LIMIT") or "5 per hour",
        "CONFIRM_RATE_LIMIT": env("CONFIRM_RATE_LIMIT") or "20 per minute;100 per hour",
        "LOGIN_RATE_LIMIT": env("LOGIN_RATE_LIMIT") or "10 per minute;50 per hour",
        "LOGIN_ACCOUNT_RATE_LIMIT": env("LOGIN_ACCOUNT_RATE_LIMIT") or "30 per hour",
        "PORTAL_SESSION_HOURS": env_int("PORTAL_SESSION_HOURS", 12),
        # Behind N reverse proxies: trust their X-Forwarded-For/-Proto (client address for limits).
        "TRUSTED_PROXIES": env_int("TRUSTED_PROXIES", 0),
        # Privacy-friendly captcha hook, off unless CAPTCHA_VERIFY_URL is set (seminar/captcha.py).
        "CAPTCHA_VERIFY_URL": env("CAPTCHA_VERIFY_URL") or None,
        "CAPTCHA_SECRET": env("CAPTCHA_SECRET") or None,
        "CAPTCHA_SITE_KEY": env("CAPTCHA_SITE_KEY") or None,
        "CAPTCHA_SCRIPT_URL": env("CAPTCHA_SCRIPT_URL") or None,
        "CAPTCHA_RESPONSE_FIELD": env("CAPTCHA_RESPONSE_FIELD") or "frc-captcha-solution",
        "CAPTCHA_WIDGET_CLASS": env("CAPTCHA_WIDGET_CLASS") or "frc-captcha",
        "CAPTCHA_CSP_SOURCES": env("CAPTCHA_CSP_SOURCES") or "",
        # Registration rules.
        "PENDING_LAPSE_HOURS": env_int("PENDING_LAPSE_HOURS", 48),
        # Attendees' personal data is removed this long after their seminar ended.
        "RETENTION_DAYS": env_int("RETENTION_DAYS", 183),
        # After the seminar: follow-up mails this long after the end (per seminar in the portal);
        # certificate records are kept longer than the rest (registers check proof for years).
        "FOLLOW_UP_DELAY_MINUTES": env_int("FOLLOW_UP_DELAY_MINUTES", 120),
        "CERTIFICATE_RETENTION_DAYS": env_int("CERTIFICATE_RETENTION_DAYS", 730),
        # On the certificate: who signs it (name, function) and an optional logo (PNG/JPEG path).
        "CERTIFICATE_SIGNATORY": env("CERTIFICATE_SIGNATORY") or "",
        "CERTIFICATE_SIGNATORY_ROLE": env("CERTIFICATE_SIGNATORY_ROLE") or "",
        "CERTIFICATE_LOGO": env("CERTIFICATE_LOGO") or "",
        # Interest list: an address with no confirmation or sign-up this long is asked once whether
        # it still wants the announcements, and removed when it does not answer within 30 days.
        "INTEREST_RETENTION_DAYS": env_int("INTEREST_RETENTION_DAYS", 730),
        # Sites (origins, space separated) that may show /embed in a frame; unset: none.
        "EMBED_ORIGINS": env("EMBED_ORIGINS") or "",
        "LOAD_EXAMPLE_PROGRAMME": env_bool("LOAD_EXAMPLE_PROGRAMME", False),
        # Worker.
        "WORKER_BATCH_SIZE": env_int("WORKER_BATCH_SIZE", 50),
        "WORKER_LEASE_SECONDS": env_int("WORKER_LEASE_SECONDS", 300),
        # An idle worker looks for new work this often (a new job waits at most this long).
        "WORKER_POLL_SECONDS": float(env("WORKER_POLL_SECONDS") or 0.25),
        "WORKER_MAX_ATTEMPTS": env_int("WORKER_MAX_ATTEMPTS", 12),
        # Babel: Dutch first.
        "BABEL_DEFAULT_LOCALE": "nl",
        "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).resolve().parent.parent / "translations"),
        "LANGUAGES": ("nl", "en"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": (env("BASE_URL") or "").startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": 4 * 3600,
        "MAX_CONTENT_LENGTH": 256 * 1024,
    }
