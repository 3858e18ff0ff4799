"""Security headers on every response, and no personal data in logs.

The Content-Security-Policy allows no inline script or style: pages use static/style.css only.
Referrer-Policy is no-referrer because links from mails carry tokens in their path.
"""
from __future__ import annotations

import logging
import re

from flask import Flask, abort, request

from . import captcha
from .reach.embed import EMBED_ENDPOINT, frame_ancestors

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
TOKEN_PATH = re.compile(r"(/r/(?:confirm|manage|join|list/(?:confirm|unsubscribe|reserve|still))/"
                        r"|/manage/reset/)[^\s\"'?]+")
# PostgreSQL's own error detail quotes the values ("Failing row contains (…)", "Key (email)=(…)");
# SQLAlchemy's hide_parameters does not reach it.
DB_DETAIL = re.compile(r"(DETAIL:\s*)[^\n]*")


def redact(text: str) -> str:
    """Remove e-mail addresses and mailed tokens from a log line."""
    return DB_DETAIL.sub(r"\1[hidden]", TOKEN_PATH.sub(r"\1[token]", EMAIL.sub("[e-mail]", text)))


class RedactingFilter(logging.Filter):
    """Attached to every handler: whatever a library logs (SMTP replies quote addresses, access
    logs quote token URLs), the line that is written carries no personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    loggers = [logging.getLogger(), logging.getLogger("gunicorn.error"), logging.getLogger("gunicorn.access")]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


def init_app(app: Flask) -> None:
    install_log_redaction()
    for handler in app.logger.handlers:
        handler.addFilter(RedactingFilter())
    embed_ancestors = frame_ancestors(app.config.get("EMBED_ORIGINS"))  # a wrong entry stops the start
    # On the app's logger itself too: its records are cleaned before any handler sees them, also
    # one added later.
    if not any(isinstance(f, RedactingFilter) for f in app.logger.filters):
        app.logger.addFilter(RedactingFilter())

    @app.before_request
    def refuse_nul():
        """NUL cannot be stored (PostgreSQL refuses it in text) nor looked up: whatever field or
        parameter carries one, the request is refused with 400 before any view reads it."""
        if "\x00" in request.path or any(
                "\x00" in key or "\x00" in value
                for source in (request.args, request.form) for key, value in source.items(multi=True)):
            abort(400)

    @app.after_request
    def headers(response):
        h = response.headers
        extra = captcha.csp_sources()
        csp = CSP if not extra else CSP.replace(
            "script-src 'self'", f"script-src 'self' {extra}").replace(
            "connect-src 'self'", f"connect-src 'self' {extra}") + f"; frame-src {extra}; worker-src 'self' blob: {extra}"
        # Only the embed page may be framed, and only by EMBED_ORIGINS; every other page by nobody.
        ancestors = embed_ancestors if request.endpoint == EMBED_ENDPOINT else "'none'"
        if ancestors != "'none'":
            csp = csp.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")
        h.setdefault("Content-Security-Policy", csp)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        if ancestors == "'none'":
            # X-Frame-Options cannot name several sites; browsers that know frame-ancestors
            # (all current ones) follow it instead, so the embed page simply leaves it out.
            h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config["BASE_URL"].startswith("https://") or request.is_secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.path.startswith(("/r/", "/manage")):
            # Personal pages: never kept by a shared computer's browser or a proxy.
            h["Cache-Control"] = "no-store"
        return response
