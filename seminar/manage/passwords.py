"""Portal passwords: single-use reset links, mailed through the outbox.

A reset token is signed (purpose "reset"), expires, and carries a fingerprint of the password hash
it was made for: once the password changes the fingerprint no longer matches, so a link works
once. The same link sets a first password for a host account created without one ("invite").
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from ..accounts import set_password
from ..database import write_transaction
from ..extensions import db
from ..jobs import kinds
from ..models import User
from ..timeutil import utcnow

RESET_HOURS = 2
INVITE_DAYS = 7


class InvalidResetLink(Exception):
    """Forged, expired or already used."""


def fingerprint(user: User) -> str:
    """Changes whenever the password does (also from "no password" to a first one)."""
    return hashlib.sha256((user.password_hash or f"none:{user.id}").encode()).hexdigest()[:20]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="seminar.reset")


def make_reset_token(user: User, invite: bool = False) -> str:
    return _serializer().dumps({"u": user.id, "h": fingerprint(user), "i": int(invite)})


def load_reset_token(token: str) -> User:
    try:
        data, signed_at = _serializer().loads(
            token, max_age=int(timedelta(days=INVITE_DAYS).total_seconds()), return_timestamp=True)
    except (SignatureExpired, BadSignature):
        raise InvalidResetLink() from None
    if not isinstance(data, dict):
        raise InvalidResetLink()
    if not data.get("i") and utcnow() - signed_at > timedelta(hours=RESET_HOURS):
        raise InvalidResetLink()
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or data.get("h") != fingerprint(user):
        raise InvalidResetLink()
    return user


def request_reset(email: str, invite: bool = False) -> bool:
    """Queue a reset (or invitation) mail when the address has an active account. The caller shows
    the same page either way, so the page never reveals which addresses have an account."""
    address = email.strip().lower()
    user = db.session.scalar(select(User).where(User.email == address))
    if user is None or not user.active:
        return False
    with write_transaction():
        # Every request is a new mail: each carries a fresh link.
        kinds.PASSWORD_RESET.enqueue(user_id=user.id, invite=invite)
    return True


def change_password(user_id: int, password: str) -> User:
    """Set a new password (ValueError when too short). Every older reset link stops working."""
    with write_transaction():
        user = db.session.get(User, user_id)
        set_password(user, password)
        user.session_version += 1  # every session ends (the caller may start this one anew)
    return user
