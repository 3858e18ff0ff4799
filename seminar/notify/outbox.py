"""Writing work to the outbox, inside the caller's transaction."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..extensions import db
from ..models import Job, JobState, Registration, RegistrationStatus, Seminar
from ..timeutil import utcnow


def enqueue(
    kind: str,
    *,
    seminar: Seminar | None = None,
    registration: Registration | None = None,
    key: str | None = None,
    due_at: datetime | None = None,
    payload: dict | None = None,
) -> Job:
    """Queue one intent. With a key, the same intent is queued once, however often it is asked."""
    if key is not None:
        existing = db.session.scalar(select(Job).where(Job.key == key))
        if existing is not None:
            return existing
    if registration is not None and seminar is None:
        seminar = registration.seminar
    job = Job(
        kind=kind,
        key=key,
        seminar=seminar,
        registration=registration,
        due_at=due_at or utcnow(),
        payload=payload or {},
        state=JobState.PENDING.value,
    )
    db.session.add(job)
    return job


def enqueue_mail(kind: str, registration: Registration, *, key: str | None = None,
                 due_at: datetime | None = None, invite: str | None = None, **payload) -> Job:
    """Queue a mail to an attendee. With `invite` (REQUEST or CANCEL) the mail carries a calendar
    invite; its SEQUENCE is fixed now, so every invite sent has a higher one than the last."""
    if key is not None:
        existing = db.session.scalar(select(Job).where(Job.key == key))
        if existing is not None:
            return existing
    if invite:
        payload.update(method=invite, sequence=registration.ical_sequence)
        registration.ical_sequence += 1
    return enqueue(f"mail.{kind}", registration=registration, key=key, due_at=due_at, payload=payload)


def schedule_reminders(registration: Registration, now: datetime | None = None) -> None:
    """Reminder mails at the seminar's reminder offsets before its start; none in the past."""
    now = now or utcnow()
    seminar = registration.seminar
    for hours in Seminar.hours_list(seminar.reminder_hours):
        due = seminar.start_at - timedelta(hours=hours)
        if due > now:
            enqueue_mail(
                "reminder", registration, due_at=due, hours=hours,
                key=f"reminder:{registration.id}:{hours}:{seminar.start_at:%Y%m%dT%H%M}",
            )


def drop_pending(kind: str, *, registration_id: int | None = None, seminar_id: int | None = None) -> None:
    """Remove queued work that no longer applies (reminders of a cancelled seat or moved seminar)."""
    stmt = delete(Job).where(Job.kind == kind, Job.state == JobState.PENDING.value)
    if registration_id is not None:
        stmt = stmt.where(Job.registration_id == registration_id)
    if seminar_id is not None:
        stmt = stmt.where(Job.seminar_id == seminar_id)
    db.session.execute(stmt)


def attendees(seminar: Seminar, *statuses: str) -> list[Registration]:
    statuses = statuses or (RegistrationStatus.CONFIRMED.value,)
    return list(db.session.scalars(
        select(Registration)
        .where(Registration.seminar_id == seminar.id, Registration.status.in_(statuses))
        .order_by(Registration.id)
    ))
