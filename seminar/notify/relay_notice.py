"""Telling the organisers how the mail relay is doing: in the portal (`notice`), and with one mail
(not one per message) once bulk mail has been held back for more than an hour (`alert_if_held`,
run by the worker's housekeeping)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from ..extensions import db
from ..jobs import kinds
from ..models import LIVE_STATES, Job, User
from .mail_schedule import budget

ALERT_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Notice:
    throttled: bool
    code: int
    held_since: datetime | None
    held_until: datetime | None
    reason: str | None
    waiting: int  # mails waiting for the relay (due, not yet sent)


def moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def notice() -> Notice | None:
    """What the portal says about the relay now, or None when all is well. Reads the shared
    state only; a relay nobody has used yet (no row, no key) is well."""
    try:
        status = budget().status()
    except Exception:  # noqa: BLE001 - the page must show even when Redis is briefly away
        return None
    if not status.throttled and status.held_since is None:
        return None
    waiting = db.session.scalar(select(func.count()).select_from(Job).where(
        Job.kind.in_([kind.name for kind in kinds.mails()]), Job.state.in_(LIVE_STATES),
        Job.last_error.like("%relay%"))) or 0
    return Notice(status.throttled, status.throttled_code, moment(status.held_since),
                  moment(status.held_until), status.held_reason, waiting)


def alert_if_held(now: datetime) -> int:
    """Once bulk mail has been held for over an hour: one mail to every organiser (once per hold).
    Returns how many were queued."""
    relay = budget()
    status = relay.status()
    if status.held_since is None or status.alerted_at is not None:
        return 0
    if now - moment(status.held_since) < ALERT_AFTER:
        return 0
    if not relay.mark_alerted():
        return 0  # another worker did it
    organisers = list(db.session.scalars(select(User).where(User.role == "organiser", User.active)))
    for user in organisers:
        kinds.RELAY_HELD.enqueue(held=int(status.held_since), user_id=user.id)
    db.session.commit()
    return len(organisers)
