"""Writing work to the outbox, inside the caller's transaction."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import delete, event, insert, select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Job, JobState, Registration, RegistrationStatus, Seminar
from ..timeutil import utcnow

# Keyed jobs added in the session's current transaction and not flushed yet, by key. Looking a key
# up then needs no flush first: a change that queues hundreds of intents (a seminar moved) sends
# its inserts to the database together at commit instead of one flush per intent.
_UNFLUSHED = "seminar.outbox.unflushed_keys"
# Keys looked up together in the current transaction (`look_up`), with the job queued under each
# or None; a job queued under one of them afterwards replaces its None.
_KNOWN = "seminar.outbox.known_keys"
LOOK_UP_CHUNK = 500


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_transaction_end")
def _forget_unflushed(session, *args) -> None:
    session.info.pop(_UNFLUSHED, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_known(session, *args) -> None:
    session.info.pop(_KNOWN, None)


def look_up(keys: Iterable[str]) -> None:
    """Find the jobs queued under many keys at once (a seminar moved: an update and reminders for
    every attendee), so that queueing those intents needs no query each."""
    known = db.session.info.setdefault(_KNOWN, {})
    keys = [key for key in dict.fromkeys(keys) if key not in known]
    with db.session.no_autoflush:
        for start in range(0, len(keys), LOOK_UP_CHUNK):
            chunk = keys[start:start + LOOK_UP_CHUNK]
            found = {job.key: job for job in db.session.scalars(select(Job).where(Job.key.in_(chunk)))}
            for key in chunk:
                known[key] = found.get(key)


def queued(key: str) -> Job | None:
    """The job queued under `key` (in the database, or added in this transaction), if any."""
    unflushed = db.session.info.get(_UNFLUSHED)
    if unflushed and key in unflushed:
        return unflushed[key]
    known = db.session.info.get(_KNOWN)
    if known is not None and key in known:
        return known[key]
    with db.session.no_autoflush:
        return db.session.scalar(select(Job).where(Job.key == key))


def enqueue(
    kind: str,
    *,
    seminar: Seminar | None = None,
    registration: Registration | None = None,
    key: str | None = None,
    due_at: datetime | None = None,
    payload: dict | None = None,
    new_key: bool = False,
) -> Job:
    """Queue one intent. With a key, the same intent is queued once, however often it is asked
    (`new_key=True`: the caller has made sure nothing is queued under it yet)."""
    if key is not None and not new_key:
        existing = queued(key)
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
    if key is not None:
        db.session.info.setdefault(_UNFLUSHED, {})[key] = job
        known = db.session.info.get(_KNOWN)
        if known is not None and key in known:
            known[key] = job
    return job


def enqueue_mail(kind: str, registration: Registration, *, key: str | None = None,
                 due_at: datetime | None = None, invite: str | None = None, new_key: bool = False,
                 **payload) -> Job:
    """Queue a mail to an attendee. With `invite` (REQUEST or CANCEL) the mail carries a calendar
    invite; its SEQUENCE is fixed now, so every invite sent has a higher one than the last.
    `new_key=True`: the caller knows nothing can have been queued under this key yet (it names a
    registration made in this very transaction), so it is not looked up first."""
    if key is not None and not new_key:
        existing = queued(key)
        if existing is not None:
            return existing
    if invite:
        payload.update(method=invite, sequence=registration.ical_sequence)
        registration.ical_sequence += 1
    return enqueue(f"mail.{kind}", registration=registration, key=key, due_at=due_at, payload=payload,
                   new_key=True)


def enqueue_for_new(kind: str, *, seminar_id: int, registration_id: int, key: str,
                    payload: dict | None = None) -> None:
    """Queue one intent, due now, about a registration inserted in this very transaction: nothing
    can be queued under its key yet, so it is one INSERT on the session's connection, without the
    ORM's unit of work (the sign-up path writes one per request). Still in the caller's
    transaction; the unique key still holds."""
    db.session.connection().execute(_INSERT_JOB, dict(
        kind=kind, key=key, seminar_id=seminar_id, registration_id=registration_id,
        due_at=utcnow(), payload=payload or {}, state=JobState.PENDING.value,
    ))


_INSERT_JOB = insert(Job.__table__)  # built once; its defaults (attempts, created_at…) still apply


def _reminders(registration: Registration, now: datetime) -> list[tuple[int, datetime, str]]:
    """(hours before, due time, key) of each reminder still to come."""
    seminar = registration.seminar
    return [(hours, seminar.start_at - timedelta(hours=hours),
             f"reminder:{registration.id}:{hours}:{seminar.start_at:%Y%m%dT%H%M}")
            for hours in Seminar.hours_list(seminar.reminder_hours)
            if seminar.start_at - timedelta(hours=hours) > now]


def schedule_reminders(registration: Registration, now: datetime | None = None) -> None:
    """Reminder mails at the seminar's reminder offsets before its start; none in the past."""
    for hours, due, key in _reminders(registration, now or utcnow()):
        enqueue_mail("reminder", registration, due_at=due, hours=hours, key=key)


def reminder_keys(registrations: Iterable[Registration], now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    return [key for registration in registrations for _, _, key in _reminders(registration, now)]


def drop_pending(kind: str, *, registration_id: int | None = None, seminar_id: int | None = None) -> None:
    """Remove queued work that no longer applies (reminders of a cancelled seat or moved seminar)."""
    stmt = delete(Job).where(Job.kind == kind, Job.state == JobState.PENDING.value)
    if registration_id is not None:
        stmt = stmt.where(Job.registration_id == registration_id)
    if seminar_id is not None:
        stmt = stmt.where(Job.seminar_id == seminar_id)
    db.session.execute(stmt)
    db.session.info.pop(_KNOWN, None)  # a job looked up may be gone now


def attendees(seminar: Seminar, *statuses: str) -> list[Registration]:
    statuses = statuses or (RegistrationStatus.CONFIRMED.value,)
    return list(db.session.scalars(
        select(Registration)
        .where(Registration.seminar_id == seminar.id, Registration.status.in_(statuses))
        .order_by(Registration.id)
    ))
