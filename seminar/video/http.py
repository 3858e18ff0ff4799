"""What the platforms that have an HTTP API (Zoom, Microsoft Graph) share.

- One `requests.Session` per provider, i.e. per batch of jobs, with timeouts on every call.
- The OAuth access token lives in the database (`PlatformToken`), so every web and worker process
  uses the same one; it is refreshed a few minutes before it expires, by one process at a time
  (row lock), and when the platform answers 401 it is refreshed once and the call made again.
- Answers are read defensively: HTML, garbage or an empty body where JSON was due is a temporary
  `PlatformError`, never an exception from deep inside `json`.
- 429s are honoured: `Retry-After` as seconds, an HTTP date or an ISO time; after a 429 or an
  answer saying no calls are left, this provider makes no further call for that long. A 429 to a
  call made right after one the platform took counts from that call, not from the 429 (see
  `_note_rate_limit`): a rate limit's wait is not honoured twice over.
- Nothing personal in error texts: addresses in a platform's message are blanked out, because
  those texts end up in logs, on jobs and on the organisers' screen.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import requests
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..database import write_transaction
from ..extensions import db
from ..models import PlatformToken
from ..timeutil import utcnow
from .base import PlatformError, Problem, VideoProvider

log = logging.getLogger("seminar.video")

TIMEOUT = (5, 30)  # connect, read (seconds)
TOKEN_TIMEOUT = (5, 15)  # shorter: the token row is locked while we wait
REFRESH_MARGIN = timedelta(minutes=5)
ADDRESS = re.compile(r"[^\s\"'<>()\[\],;:]+@[^\s\"'<>()\[\],;:]+")


def scrub(text: object, limit: int = 300) -> str:
    """A platform's message, safe for logs and screens: no e-mail addresses, bounded length."""
    return ADDRESS.sub("<address>", str(text or ""))[:limit]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds, an HTTP date, or an ISO 8601
    time such as Zoom's daily-limit "2030-01-02T00:00:00Z". None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    now = now or utcnow()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    when = None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def until_next_utc_day(now: datetime | None = None) -> float:
    now = now or utcnow()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    return (tomorrow - now).total_seconds()


def describe_body(response: requests.Response) -> str:
    if not response.content:
        return "an empty body"
    kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    if "html" in kind or response.content.lstrip()[:1] == b"<":
        return "HTML"
    return f"unreadable data ({kind})"


def json_body(response: requests.Response) -> dict | None:
    """The answer's JSON object, or None when it is not one."""
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def shared_token(provider: str, fetch, *, refused: str | None = None) -> str:
    """The platform's access token, shared by every process through the database.

    `fetch()` asks the platform for a new one and returns (token, lifetime in seconds); it runs
    with the token row locked, so when many processes find the token expired only one asks.
    `refused` is a token the platform just answered 401 to: it is not handed out again.
    """
    now = utcnow()
    row = db.session.execute(
        select(PlatformToken).where(PlatformToken.provider == provider)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is not None and _usable(row, now, refused):
        return row.access_token
    if row is None:
        _create_row(provider)
    with write_transaction():
        row = db.session.execute(
            select(PlatformToken).where(PlatformToken.provider == provider)
            .with_for_update().execution_options(populate_existing=True)
        ).scalar_one()
        if _usable(row, now, refused):  # another process refreshed it while we waited
            return row.access_token
        token, lifetime = fetch()
        row.access_token = token
        row.expires_at = utcnow() + timedelta(seconds=max(0, lifetime))
        log.info("%s: new access token, valid %s s", provider, lifetime)
    return token


def _usable(row: PlatformToken, now: datetime, refused: str | None) -> bool:
    return bool(row.access_token) and row.access_token != refused and (
        row.expires_at is not None and row.expires_at > now + REFRESH_MARGIN)


def _create_row(provider: str) -> None:
    try:
        with write_transaction():
            db.session.add(PlatformToken(provider=provider))
    except IntegrityError:
        pass  # another process made it first


class HttpProvider(VideoProvider):
    """A provider that talks to the platform's HTTP API with an OAuth client-credentials token."""

    label = "platform"  # in messages: "Zoom", "Microsoft Graph"

    def __init__(self, config):
        super().__init__(config)
        self.http = requests.Session()
        self._quiet_until = 0.0  # on self.clock: no calls before this (the platform asked us to wait)
        self._took_at: float | None = None  # when the platform last took a call, until a 429 follows

    def close(self) -> None:
        self.http.close()

    # -- to be provided by each platform
    def fetch_token(self) -> tuple[str, int]:
        raise NotImplementedError

    def error_for(self, response: requests.Response, body: dict | None) -> PlatformError:
        raise NotImplementedError

    # -- shared
    def _token_answer(self, response: requests.Response) -> tuple[str, int]:
        body = json_body(response)
        if response.status_code != 200 or body is None or not body.get("access_token"):
            if response.status_code in (400, 401, 403):
                log.error("%s: login refused (%s); check the client id, secret and account/tenant",
                          self.label, response.status_code)
                raise PlatformError(
                    f"{self.label} refused our login ({response.status_code}): check the app's "
                    "credentials", retry_after=600)
            what = describe_body(response) if body is None else "no access token"
            raise PlatformError(
                f"{self.label} token endpoint answered {response.status_code} with {what}")
        try:
            lifetime = int(body.get("expires_in", 3599))
        except (TypeError, ValueError):
            lifetime = 3599
        return str(body["access_token"]), lifetime

    def _post_token(self, url: str, **kwargs) -> requests.Response:
        try:
            return self.http.post(url, timeout=TOKEN_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise PlatformError(f"{self.label} token endpoint unreachable: {exc.__class__.__name__}") from exc

    def request(self, method: str, url: str, *, json: dict | None = None,
                params: dict | None = None) -> dict | None:
        """Make one API call; returns the JSON object answered, or None for an empty success."""
        wait = self._quiet_until - self.clock.now()
        if wait > 0:
            raise PlatformError(f"{self.label}: holding back {wait:.0f} s as the platform asked",
                                retry_after=wait, problem=Problem.HELD_BACK)
        refused = None
        for attempt in (1, 2):
            token = shared_token(self.name, self.fetch_token, refused=refused)
            try:
                response = self.http.request(method, url, json=json, params=params, timeout=TIMEOUT,
                                             headers={"Authorization": f"Bearer {token}"})
            except requests.Timeout as exc:
                raise PlatformError(f"{self.label} did not answer in time ({method} {_path(url)})") from exc
            except requests.RequestException as exc:
                raise PlatformError(f"{self.label} unreachable: {exc.__class__.__name__}") from exc
            if response.status_code == 401 and attempt == 1:
                log.info("%s: access token refused (401); refreshing it once", self.label)
                refused = token
                continue
            break
        quiet = self._note_rate_limit(response)
        body = json_body(response)
        if 200 <= response.status_code < 300:
            if response.status_code == 204 or (not response.content and method in ("PATCH", "PUT", "DELETE")):
                return None
            if body is None:
                raise PlatformError(f"{self.label} answered {response.status_code} to {method} "
                                    f"{_path(url)} with {describe_body(response)}")
            return body
        exc = self.error_for(response, body)
        if quiet is not None and exc.problem is Problem.RATE_LIMITED:
            exc.retry_after = quiet  # the wait as counted in _note_rate_limit
        log.warning("%s: %s %s -> %s: %s", self.label, method, _path(url), response.status_code, exc)
        raise exc

    def _note_rate_limit(self, response: requests.Response) -> float | None:
        """After a 429, or an answer saying no calls are left, make no call for a while; returns
        that while in seconds (None when no wait is asked for).

        A Retry-After of whole seconds is rounded up, and a rate limit counts from the call the
        platform took last. So a 429 to a call made within that many seconds of the last call taken
        (we asked too soon) means: that many seconds after the call taken, and not less than the
        rounding allows (Retry-After minus one second from now). Counted from the 429 instead, every
        call that came a little too soon would cost its delay on top of the platform's wait. Any
        other 429 (a second in a row, an exact wait in fractions of a second) counts from itself."""
        now = self.clock.now()
        headers = response.headers
        if headers.get("X-RateLimit-Type", "").lower() == "daily-limit":
            return None  # concerns one registrant's address, not our calls in general
        took_at, self._took_at = self._took_at, None
        pause = None
        if response.status_code == 429:
            pause = min(parse_retry_after(headers.get("Retry-After")) or 1.0, 3600.0)
            if took_at is not None and pause.is_integer() and now < took_at + pause:
                pause = max(took_at + pause, now + pause - 1.0) - now
        else:
            if 200 <= response.status_code < 300:
                self._took_at = now
            if headers.get("X-RateLimit-Remaining", "").strip() == "0":
                pause = min(parse_retry_after(headers.get("Retry-After")) or 1.0, 3600.0)
        if pause is None:
            return None
        self._quiet_until = max(self._quiet_until, now + pause)
        return self._quiet_until - now


def _path(url: str) -> str:
    """The URL's path without the query, for log lines."""
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
