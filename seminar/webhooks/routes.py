"""Event notifications from video platforms: `POST /webhooks/zoom`.

Zoom signs every notification: `x-zm-signature` is "v0=" + hex HMAC-SHA256 of
"v0:{x-zm-request-timestamp}:{raw body}" with the app's secret token. We refuse a missing or
wrong signature (compared in constant time), a timestamp more than five minutes off, and bodies
over 64 KiB. Zoom retries anything that is not 2xx, so events we do not handle get a 200 and a
log line. Nothing personal is logged: ids only.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from ..database import write_transaction
from ..extensions import csrf, db
from ..attendance.matching import match_one, record_attendance
from ..jobs import kinds
from ..models import Seminar

log = logging.getLogger("seminar.webhooks")

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY = 64 * 1024
MAX_SKEW = 300  # seconds


def zoom_signature(secret: str, timestamp: str, body: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _refuse(status: int, reason: str):
    log.warning("zoom webhook refused (%s): %s", status, reason)
    return jsonify({"error": reason}), status


def _read_body() -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY (read no further than that)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = request.stream.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


@bp.post("/zoom")
@csrf.exempt
def zoom():
    secret = current_app.config.get("ZOOM_WEBHOOK_SECRET_TOKEN")
    if not secret:
        return _refuse(503, "ZOOM_WEBHOOK_SECRET_TOKEN is not set")
    body = _read_body()
    if body is None:
        return _refuse(413, f"body larger than {MAX_BODY} bytes")
    timestamp = request.headers.get("x-zm-request-timestamp", "")
    signature = request.headers.get("x-zm-signature", "")
    if not timestamp or not signature:
        return _refuse(401, "signature or timestamp header missing")
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        return _refuse(401, "timestamp is not a number")
    if skew > MAX_SKEW:
        return _refuse(401, f"timestamp {skew:.0f} s off (stale or replayed)")
    if not hmac.compare_digest(signature.encode(), zoom_signature(secret, timestamp, body).encode()):
        return _refuse(401, "signature does not match")
    try:
        event = json.loads(body)
    except ValueError:
        return _refuse(400, "body is not JSON")
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return _refuse(400, "no event name")
    name = event["event"]
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}

    if name == "endpoint.url_validation":
        plain = payload.get("plainToken")
        if not isinstance(plain, str) or not plain:
            return _refuse(400, "url_validation without plainToken")
        encrypted = hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
        log.info("zoom webhook: endpoint URL validated")
        return jsonify({"plainToken": plain, "encryptedToken": encrypted})

    handle = HANDLERS.get(name.split(".", 1)[-1]) if name.split(".", 1)[0] in ("meeting", "webinar") else None
    if handle is None:
        log.info("zoom webhook: event %s ignored (not one we use)", name)
        return jsonify({"status": "ignored"})
    obj = payload.get("object") if isinstance(payload.get("object"), dict) else {}
    seminar = _seminar_for(obj.get("id"))
    if seminar is None:
        log.info("zoom webhook: %s for meeting %s, not one of ours", name, obj.get("id"))
        return jsonify({"status": "unknown meeting"})
    with write_transaction():
        outcome = handle(db.session.get(Seminar, seminar.id), obj, event)
    log.info("zoom webhook: %s for seminar %s: %s", name, seminar.id, outcome)
    return jsonify({"status": outcome})


def _seminar_for(meeting_id) -> Seminar | None:
    if meeting_id in (None, ""):
        return None
    return db.session.scalar(select(Seminar).where(
        Seminar.meeting_id == str(meeting_id), Seminar.video_provider == "zoom"))


def _when(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _participant(seminar: Seminar, obj: dict, event: str, field: str) -> str:
    person = obj.get("participant") if isinstance(obj.get("participant"), dict) else {}
    at = _when(person.get(field))
    if at is None:
        return "no time given: not recorded"
    email = person.get("email") if isinstance(person.get("email"), str) else None
    reg_id = match_one(seminar.id, str(person.get("registrant_id") or "") or None, email)
    participant = person.get("participant_uuid") or person.get("id") or person.get("user_id")
    guest = person.get("user_name") if isinstance(person.get("user_name"), str) else None
    stored = record_attendance(seminar.id, reg_id, event, at, str(participant)[:120] if participant else None,
                               "webhook", guest=guest or email)
    return "recorded" if stored else "already recorded"


def _joined(seminar: Seminar, obj: dict, event: dict) -> str:
    return _participant(seminar, obj, "joined", "join_time")


def _left(seminar: Seminar, obj: dict, event: dict) -> str:
    return _participant(seminar, obj, "left", "leave_time")


def _changed(seminar: Seminar, obj: dict, event: dict) -> str:
    """Changed at Zoom: check it against ours (our own updates come back here too, and match)."""
    if seminar.is_cancelled:
        return "seminar cancelled: nothing to check"
    kinds.CHECK_MEETING.enqueue(seminar=seminar)  # a check still waiting covers this event too
    return "check queued"


def _deleted(seminar: Seminar, obj: dict, event: dict) -> str:
    if seminar.is_cancelled:
        return "deleted by us"
    # A recurring meeting's single occurrence going is not the meeting going.
    if obj.get("occurrences"):
        return "an occurrence deleted: ignored"
    seminar.platform_error = ("The meeting was deleted at Zoom outside this service; it is being "
                              "checked and made anew if needed.")
    kinds.CHECK_MEETING.enqueue(seminar=seminar)  # a check still waiting covers this event too
    return "check queued"


HANDLERS = {
    "participant_joined": _joined,
    "participant_left": _left,
    "updated": _changed,
    "deleted": _deleted,
}
