"""Signed, expiring tokens for the links that go out by mail.

Each token says what it may do (its purpose is the itsdangerous salt) and carries only a
registration id, so a link forwarded or leaked reveals nothing personal by itself.
"""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .extensions import db
from .models import Registration, RegistrationStatus

PURPOSES = {"confirm", "manage", "join", "evaluate"}


class InvalidToken(Exception):
    """The link is forged, damaged or expired (`expired` tells which)."""

    def __init__(self, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    assert purpose in PURPOSES
    return _serializer_for(current_app.config["SECRET_KEY"], purpose)


@lru_cache(maxsize=16)
def _serializer_for(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    # A serializer holds nothing but its key and salt: one per key and purpose serves every link
    # (a fan-out makes two links per attendee).
    return URLSafeTimedSerializer(secret_key, salt=f"seminar.{purpose}")


def make_token(purpose: str, registration: Registration) -> str:
    return _serializer(purpose).dumps({"r": registration.id})


def max_age(purpose: str) -> int:
    if purpose == "confirm":
        return int(timedelta(hours=current_app.config["PENDING_LAPSE_HOURS"]).total_seconds())
    # Manage and join links live as long as anyone could need them: a year covers any seminar in
    # the programme; after the retention period the registration itself is gone anyway.
    return int(timedelta(days=400).total_seconds())


def load_token(purpose: str, token: str) -> Registration:
    try:
        data = _serializer(purpose).loads(token, max_age=max_age(purpose))
    except SignatureExpired as exc:
        raise InvalidToken(expired=True) from exc
    except BadSignature as exc:
        raise InvalidToken() from exc
    ident = data.get("r") if isinstance(data, dict) else None
    # Signed by us, but still checked: only a plain positive id of the size the database holds.
    if type(ident) is not int or not 0 < ident < 2**31:
        raise InvalidToken()
    reg = db.session.get(Registration, ident)
    if reg is None or reg.status == RegistrationStatus.PURGED:
        raise InvalidToken()
    return reg


def link(purpose: str, registration: Registration) -> str:
    """An absolute link under BASE_URL (mailed links must not depend on the request's host)."""
    endpoint = {"confirm": "registration.confirm", "manage": "registration.manage", "join": "registration.join",
                "evaluate": "after.evaluate"}[purpose]
    return external_url(endpoint, token=make_token(purpose, registration))


def external_url(endpoint: str, **values) -> str:
    """BASE_URL + the endpoint's path; works in the worker too, where there is no request."""
    adapter = current_app.url_map.bind("localhost")
    return current_app.config["BASE_URL"] + adapter.build(endpoint, values)
