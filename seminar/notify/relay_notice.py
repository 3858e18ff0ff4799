"""Telling the organisers how the mail relay is doing: in the portal (`notice`), and with one mail
(not one per message) once bulk mail has been held back for more than an hour (`alert_if_held`,
run by the worker's housekeeping)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask_babel import format_datetime, gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..models import Job, JobState, User
from ..tokens import external_url
from .mail_schedule import budget
from .mails import Composed, user_composer
from .outbox import enqueue

ALERT_AFTER = timedelta(hours=1)
ALERT_KIND = "mail.relay_held"


@dataclass(frozen=True)
class Notice:
    throttled: bool
    code: int
    held_since: datetime | None
    held_until: datetime | None
    reason: str | None
    waiting: int  # mails waiting for the relay (due, not yet sent)


def _moment(epoch: float | None) -> datetime | None:
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
        Job.kind.like("mail.%"), Job.state.in_((JobState.PENDING.value, JobState.CLAIMED.value)),
        Job.last_error.like("%relay%"))) or 0
    return Notice(status.throttled, status.throttled_code, _moment(status.held_since),
                  _moment(status.held_until), status.held_reason, waiting)


def alert_if_held(now: datetime) -> int:
    """Once bulk mail has been held for over an hour: one mail to every organiser (once per hold).
    Returns how many were queued."""
    relay = budget()
    status = relay.status()
    if status.held_since is None or status.alerted_at is not None:
        return 0
    if now - _moment(status.held_since) < ALERT_AFTER:
        return 0
    if not relay.mark_alerted():
        return 0  # another worker did it
    organisers = list(db.session.scalars(select(User).where(User.role == "organiser", User.active)))
    for user in organisers:
        enqueue(ALERT_KIND, key=f"relay-held:{int(status.held_since)}:{user.id}",
                payload={"user_id": user.id})
    db.session.commit()
    return len(organisers)


@user_composer("relay_held")
def relay_held(job: Job, user: User) -> Composed | None:
    status = budget().status()
    if status.held_since is None:
        return None  # mail flows again: nothing to say any more
    since = format_datetime(_moment(status.held_since), "d MMMM HH:mm")
    paragraphs = [
        _("Hello %(name)s,", name=user.name) if user.name else _("Hello,"),
        _("Since %(time)s the mail relay has refused more mail: its quota is used up.", time=since),
        _("Mail to many (calendar updates, reminders, announcements) is held back and goes out "
          "by itself once the quota allows it again. Nothing is lost. Mail a person is waiting "
          "for (confirmations) is still tried first."),
    ]
    if status.held_until is not None:
        paragraphs.append(_("The next try is at about %(time)s.",
                            time=format_datetime(_moment(status.held_until), "d MMMM HH:mm")))
    if status.held_reason:
        paragraphs.append(_("The relay said: %(reason)s", reason=status.held_reason))
    paragraphs.append(_("If this happens more often, ask for a higher quota or set MAIL_RATE_LIMIT "
                        "to the relay's quota, so that the service spreads mail over the day."))
    return Composed(
        subject=_("Mail is being held back: the relay's quota is used up"),
        paragraphs=paragraphs,
        action=(_("View the outbox"), external_url("manage.outbox", state="pending", family="mail")),
        footer=_("You receive this mail because you are an organiser in the seminar portal."),
    )
