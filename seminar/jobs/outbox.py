"""Writing jobs to the outbox (the `job` table), inside the caller's transaction.

Called through a declared kind (kinds.py), never directly with a kind's name. An intent's key is
unique among pending jobs (a partial unique index, as procrastinate's queueing lock), so `queued`
looks for such a job first; a job running under the key does not hold it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, insert as sql_insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Job, JobState, Lane, Registration, Seminar
from ..timeutil import utcnow

# What this transaction knows about keys, kept in session.info with the transaction it belongs to
# (and forgotten with it): jobs added and not flushed yet (looking one up then needs no flush
# first, so a change that queues hundreds of intents sends its inserts together at commit), and
# keys looked up together (`look_up`).
_CACHE = "seminar.outbox"
LOOK_UP_CHUNK = 500


class _Known:
    """Per key: the job pending under it (or None), and whether any job ever had it."""

    def __init__(self) -> None:
        self.live: dict[str, Job | None] = {}
        self.ever: dict[str, bool] = {}


def _cache() -> _Known:
    session = db.session()
    transaction = session.get_transaction()
    if transaction is None:  # begin now: what is cached belongs to the transaction about to write
        session.connection()
        transaction = session.get_transaction()
    cached = session.info.get(_CACHE)
    if cached is None or cached[0] is not transaction:
        cached = session.info[_CACHE] = (transaction, _Known())
    return cached[1]


def _forget() -> None:
    db.session().info.pop(_CACHE, None)


def look_up(keys: Iterable[str]) -> None:
    """Find the jobs queued under many keys at once (a seminar moved: an update and reminders for
    every attendee), so that queueing those intents needs no query each."""
    known = _cache()
    keys = [key for key in dict.fromkeys(keys) if key not in known.live]
    with db.session.no_autoflush:
        for start in range(0, len(keys), LOOK_UP_CHUNK):
            chunk = keys[start:start + LOOK_UP_CHUNK]
            live, ever = {}, set()
            for job_id, key, state in db.session.execute(
                    select(Job.id, Job.key, Job.state).where(Job.key.in_(chunk))):
                ever.add(key)
                if state == JobState.PENDING:
                    live[key] = job_id
            for key in chunk:
                known.live[key] = db.session.get(Job, live[key]) if key in live else None
                known.ever[key] = key in ever


def queued(key: str, once: bool = False) -> Job | None:
    """The job pending under `key` (in the database, or added in this transaction); with `once`,
    any job that ever had the key."""
    known = _cache()
    if key in known.live:
        job = known.live[key]
        if job is not None or not once or not known.ever.get(key):
            return job
    with db.session.no_autoflush:
        job = db.session.scalar(select(Job).where(Job.key == key, Job.state == JobState.PENDING).limit(1))
        if job is None and once:
            job = db.session.scalar(select(Job).where(Job.key == key).order_by(Job.id).limit(1))
    return job


def add(kind: str, lane: Lane, key: str | None, *, registration: Registration | None = None,
        seminar: Seminar | None = None, due_at: datetime | None = None, payload: dict | None = None) -> Job:
    """A new job in the current transaction (the caller looked for one queued under `key`).
    Another transaction may queue the same intent between that look-up and this insert (two
    webhooks at once, two workers): a keyed job goes in under a savepoint, and when the key's
    index refuses it, the job the other transaction queued is the answer."""
    if registration is not None and seminar is None:
        seminar = registration.seminar
    job = Job(kind=kind, lane=lane, key=key, seminar=seminar, registration=registration,
              due_at=due_at or utcnow(), payload=payload or {}, state=JobState.PENDING)
    if key is None:
        db.session.add(job)
        return job
    try:
        with db.session.begin_nested():
            db.session.add(job)
    except IntegrityError:
        existing = db.session.scalar(select(Job).where(Job.key == key, Job.state == JobState.PENDING).limit(1))
        if existing is None:
            raise
        job = existing
    remember(key, job)
    return job


def remember(key: str, job: Job) -> None:
    """Answer `queued(key)` with `job` for the rest of this transaction."""
    known = _cache()
    known.live[key] = job
    known.ever[key] = True


def insert(kind: str, lane: Lane, key: str | None, *, seminar_id: int, registration_id: int,
           payload: dict | None = None, connection: Connection | None = None) -> None:
    """A new job, due now, as one INSERT on the session's connection (or the caller's
    `connection`), without the ORM's unit of work (the sign-up path writes one per request).
    Still in the caller's transaction."""
    (connection or db.session.connection()).execute(_INSERT_JOB, dict(
        kind=kind, lane=lane, key=key, seminar_id=seminar_id, registration_id=registration_id,
        due_at=utcnow(), payload=payload or {}, state=JobState.PENDING,
    ))


_INSERT_JOB = sql_insert(Job.__table__)  # built once; its defaults (attempts, created_at…) still apply


def drop_pending(kind: str, *, registration_id: int | None = None, seminar_id: int | None = None) -> None:
    """Remove queued work of one kind that no longer applies."""
    stmt = delete(Job).where(Job.kind == kind, Job.state == JobState.PENDING)
    if registration_id is not None:
        stmt = stmt.where(Job.registration_id == registration_id)
    if seminar_id is not None:
        stmt = stmt.where(Job.seminar_id == seminar_id)
    db.session.execute(stmt)
    _forget()  # a job looked up may be gone now
