"""Host digests: before the start every host gets the attendee list by mail.

One outbox row per host and offset in `Seminar.digest_hours` ("24,1": a list a day before and a
final list an hour before), written when a seminar is published and rewritten when it is
rescheduled, its offsets or its hosts change. What the mail says is worked out at send time: the
counts as they are then, and who joined or left since the host's previous digest went out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..jobs import kinds
from ..models import Job, Registration, RegistrationStatus, Seminar
from ..timeutil import utcnow

ON_LIST = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)

def schedule_digests(seminar: Seminar, now: datetime | None = None) -> None:
    """(Re)write the seminar's unsent digests. Call inside the transaction that publishes,
    reschedules or cancels the seminar or changes its hosts: a seminar that is not published
    (draft, cancelled) keeps none."""
    now = now or utcnow()
    kinds.HOST_DIGEST.drop_pending(seminar_id=seminar.id)
    if not seminar.is_published:
        return
    offsets = Seminar.hours_list(seminar.digest_hours or "")
    db.session.flush()  # hosts created in this transaction need their id for the payload
    for host in seminar.hosts:
        if not host.active:
            continue
        for hours in offsets:
            due = seminar.start_at - timedelta(hours=hours)
            if due <= now:
                continue
            kinds.HOST_DIGEST.enqueue(seminar=seminar, due_at=due, user_id=host.id, hours=hours,
                                      final=hours == min(offsets))


def previous_digest_at(job: Job) -> datetime | None:
    """When this host's previous digest for this seminar went out (None: this is the first)."""
    return db.session.scalar(
        select(Job.done_at)
        .where(Job.kind == kinds.HOST_DIGEST.name, Job.seminar_id == job.seminar_id, Job.id != job.id,
               Job.key.like(kinds.HOST_DIGEST.key_for(seminar_id=job.seminar_id, user_id=job.payload["user_id"],
                                                      hours="") + "%"),
               Job.recipient.is_not(None), Job.done_at.is_not(None))
        .order_by(Job.done_at.desc())
        .limit(1)
    )


@dataclass
class Digest:
    confirmed: list[Registration]
    waitlisted: list[Registration]
    pending: int
    since: datetime | None
    joined: list[Registration] = field(default_factory=list)
    promoted: list[Registration] = field(default_factory=list)
    left: list[Registration] = field(default_factory=list)


def _on_list_at(reg: Registration) -> datetime | None:
    """When the person got on the list: a seat, or a waitlist place, whichever came first."""
    moments = [m for m in (reg.confirmed_at, reg.waitlisted_at) if m is not None]
    return min(moments) if moments else None


def digest_for(seminar: Seminar, since: datetime | None) -> Digest:
    regs = list(db.session.scalars(
        select(Registration).where(Registration.seminar_id == seminar.id)
        .order_by(Registration.name, Registration.id)
    ))
    digest = Digest(
        confirmed=[r for r in regs if r.status == RegistrationStatus.CONFIRMED],
        waitlisted=sorted((r for r in regs if r.status == RegistrationStatus.WAITLISTED),
                          key=lambda r: (r.waitlisted_at, r.id)),
        pending=sum(1 for r in regs if r.status == RegistrationStatus.PENDING),
        since=since,
    )
    if since is None:
        return digest
    for reg in regs:
        joined_at = _on_list_at(reg)
        if reg.status in ON_LIST and joined_at and joined_at > since:
            digest.joined.append(reg)
        elif reg.status == RegistrationStatus.CONFIRMED and reg.confirmed_at and reg.confirmed_at > since:
            digest.promoted.append(reg)  # was on the waitlist at the last digest
        elif (reg.status == RegistrationStatus.CANCELLED and reg.cancelled_at and reg.cancelled_at > since
              and joined_at is not None and joined_at <= since):
            # Only people the host was told about: a sign-up that came and went in between
            # was never on a list they saw.
            digest.left.append(reg)
    return digest
