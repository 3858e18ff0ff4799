"""Signed links mailed to subscribers. Each says what it may do (its purpose is the salt), whom it
is for (subscriber id and the subscriber's nonce) and, for the reserve and unsubscribe links, which
seminar's mail carried it. A forged, damaged, expired or swapped link, or one for an address that
is gone, is simply invalid: the page never shows whose link it might have been."""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..extensions import db
from ..tokens import external_url
from .models import Subscriber

ENDPOINTS = {
    "confirm": "reach.confirm",
    "unsubscribe": "reach.unsubscribe",
    "reserve": "reach.reserve",
    "still": "reach.still_interested",
}
REANSWER_DAYS = 30  # "still interested?" is answered within this many days, or the address goes


class InvalidLink(Exception):
    """Forged, damaged, expired, swapped, or for an address no longer on the list."""


@lru_cache(maxsize=16)
def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"seminar.list.{purpose}")


def _max_age(purpose: str) -> int:
    if purpose == "confirm":
        return int(timedelta(hours=current_app.config["PENDING_LAPSE_HOURS"]).total_seconds())
    if purpose == "still":
        return int(timedelta(days=REANSWER_DAYS).total_seconds())
    # Unsubscribe and reserve links work as long as the mail that carries them may be read:
    # a reserve link is also refused once its seminar's sign-up has closed.
    return int(timedelta(days=400).total_seconds())


def make_token(purpose: str, subscriber: Subscriber, seminar_id: int | None = None) -> str:
    assert purpose in ENDPOINTS
    data = {"s": subscriber.id, "n": subscriber.nonce}
    if seminar_id is not None:
        data["m"] = seminar_id
    return _serializer(current_app.config["SECRET_KEY"], purpose).dumps(data)


def link(purpose: str, subscriber: Subscriber, seminar_id: int | None = None) -> str:
    return external_url(ENDPOINTS[purpose], token=make_token(purpose, subscriber, seminar_id))


def load_token(purpose: str, token: str) -> tuple[Subscriber, int | None]:
    """The subscriber the link is for, and the seminar it names (if any)."""
    try:
        data = _serializer(current_app.config["SECRET_KEY"], purpose).loads(token, max_age=_max_age(purpose))
    except BadSignature as exc:  # SignatureExpired is one too: an old link is told the same way
        raise InvalidLink() from exc
    if not isinstance(data, dict):
        raise InvalidLink()
    ident, nonce, seminar_id = data.get("s"), data.get("n"), data.get("m")
    if type(ident) is not int or not 0 < ident < 2**31 or not isinstance(nonce, str):
        raise InvalidLink()
    if seminar_id is not None and (type(seminar_id) is not int or not 0 < seminar_id < 2**31):
        raise InvalidLink()
    subscriber = db.session.get(Subscriber, ident)
    if subscriber is None or subscriber.nonce != nonce:
        raise InvalidLink()
    return subscriber, seminar_id
