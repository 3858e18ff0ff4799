"""The runner: claims due jobs in batches (interactive lane first), runs them, records outcomes.

Guarantees (docs/DELIVERY.md has the long form):
- A job is claimed by one worker at a time: claims are a single UPDATE over
  `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, and under SQLite's write lock.
- A claim is a lease. Work claimed by a worker that died is taken again once the lease expires.
- Each job's outcome is committed right after it ran, together with what the job changed (e.g. a
  join URL and the mail that follows); mails the SMTP server accepted one after the other while
  the previous outcomes were being committed are recorded together, in the next commit. A job
  therefore runs twice only if a worker dies after the outside world accepted it and before that
  commit (at-least-once, with that window of milliseconds).
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Callable, Iterable

from flask import current_app
from sqlalchemy import bindparam, case, func, inspect, or_, select, update
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..database import WRITE_LOCK, write_transaction
from ..extensions import db
from ..models import Job, JobState, Lane
from ..timeutil import utcnow
from . import kinds
from .outcome import Defer, Done, Fail, Retry

log = logging.getLogger("seminar.worker")


class LeaseLost(Exception):
    pass


# A batch runner (a kind's `batch`, kinds.py) runs the claimed jobs of its kinds and reports each
# job's outcome through the `Recorder` it is given.
BatchRunner = Callable[[list[Job], "Recorder"], None]


class Pauses:
    """Work handed back untried because the other side asked us to wait (a platform's 429 with
    Retry-After, an SMTP server gone away): until then this worker claims no more jobs of that
    kind for that seminar, instead of trying them in the next batch only to be told the same.
    Kept in the worker's memory; `worker --once` keeps none."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, int | None], datetime] = {}

    def add(self, kind: str, seminar_id: int | None, until: datetime) -> None:
        key = (kind, seminar_id)
        if key not in self._until or self._until[key] < until:
            self._until[key] = until

    def active(self, now: datetime | None = None) -> list[tuple[str, int | None]]:
        now = now or utcnow()
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]
        return list(self._until)

    def next_end(self) -> datetime | None:
        return min(self._until.values(), default=None)

    @staticmethod
    def exclude(paused: list[tuple[str, int | None]]):
        """A condition leaving out the paused (kind, seminar) pairs."""
        condition = None
        for kind, seminar_id in paused:
            same = (Job.kind == kind) & (func.coalesce(Job.seminar_id, -1) == (-1 if seminar_id is None else seminar_id))
            condition = ~same if condition is None else condition & ~same
        return condition


class Recorder:
    """Records what happened to each claimed job, committing each outcome on its own (mails the
    server accepted one after the other: together, see `done_together`)."""

    def __init__(self, worker_id: str, now: datetime, pauses: Pauses | None = None,
                 subjects: dict[int, tuple[str, int | None]] | None = None):
        self.worker_id = worker_id
        self.now = now  # when the batch began (tests pass a moment of their own)
        self.began = time.monotonic()
        self.pauses = pauses
        self.subjects = subjects or {}  # id(job) -> (kind, seminar_id), read when claimed
        self.asked: dict[tuple[str, int | None], datetime] = {}  # pauses asked for in this batch

    @staticmethod
    def job_id(job: Job) -> int:
        """The job's id without reading the row again (every outcome's commit expires what the
        session holds, and a batch's jobs are all in it)."""
        identity = inspect(job).identity
        return identity[0] if identity else job.id

    def _close(self, job: Job, apply: Callable[[], None] | None = None, **values) -> bool:
        # Anything read so far is let go; the outcome is written in a transaction of its own that
        # starts as a writer (see database.write_transaction).
        job_id = self.job_id(job)
        db.session.rollback()
        try:
            with write_transaction():
                result = db.session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.claimed_by == self.worker_id,
                           Job.state == JobState.CLAIMED)
                    .values(claimed_by=None, lease_until=None, **values)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    raise LeaseLost()
                if apply is not None:
                    apply()
        except LeaseLost:
            # Our lease ran out and another worker took the job: leave it to them.
            log.warning("job %s: lease lost before its outcome was recorded", job_id)
            return False
        return True

    def done(self, job: Job, result: "Done | str | None" = None) -> bool:
        if not isinstance(result, Done):
            result = Done(note=result)
        return self._close(job, result.apply, state=JobState.DONE, done_at=utcnow(),
                           last_error=result.note, **result.fields)

    def done_together(self, results: list[tuple[Job, Done]], connection=None) -> None:
        """Record several jobs as done in one transaction: what one platform call did for thirty
        attendees, or mails the SMTP server accepted one after the other. With `connection` (one
        of the worker's own, see `outcome_connection`) and nothing to apply, it is written there,
        so the session keeps the batch's objects loaded for the mails still to be composed. A job
        whose lease ran out meanwhile is left to the worker that took it over."""
        if not results:
            return
        now = utcnow()
        rows = [(self.job_id(job), result) for job, result in results]

        def values(job_id: int, result: Done) -> dict:
            row = {"b_id": job_id, "b_worker": self.worker_id, "b_done_at": now, "b_note": result.note}
            row.update({f"b_{name}": value for name, value in result.fields.items()})
            return row

        def record(execute) -> None:
            for job_id, result in rows:
                if execute(_done_statement(tuple(sorted(result.fields))), values(job_id, result)).rowcount != 1:
                    log.warning("job %s: lease lost before its outcome was recorded", job_id)
                elif result.apply is not None:
                    result.apply()

        if connection is not None and all(result.apply is None for _, result in results):
            # Nothing to apply: one executemany per set of stored fields (rowcount is their sum).
            groups: dict[tuple[str, ...], list[tuple[int, dict]]] = defaultdict(list)
            for job_id, result in rows:
                groups[tuple(sorted(result.fields))].append((job_id, values(job_id, result)))
            with connection.begin():
                for fields, group in groups.items():
                    recorded = connection.execute(_done_statement(fields), [row for _, row in group]).rowcount
                    if recorded != len(group):
                        log.warning("jobs %s: %d of their leases lost before their outcomes were recorded",
                                    ", ".join(str(job_id) for job_id, _ in group), len(group) - recorded)
            return
        db.session.rollback()
        with write_transaction():
            record(db.session.execute)

    def failed(self, job: Job, error: str) -> bool:
        log.error("job %s (%s) failed permanently: %s", job.id, job.kind, error)
        return self._close(job, state=JobState.FAILED, done_at=utcnow(), last_error=error[:2000])

    def current(self) -> datetime:
        """Now, on the batch's clock: when it began plus the time it has taken so far (a batch of
        platform calls can take a while, and a wait asked for counts from when it was asked)."""
        return self.now + timedelta(seconds=time.monotonic() - self.began)

    def retry(self, job: Job, error: str, after: float | None = None, pause: bool = True) -> bool:
        """Run the job again later. `after`: the other side's wish (Retry-After), which also
        pauses this kind of job for this seminar unless `pause` is False (a wait that concerns
        this one job only); else our own backoff."""
        policy = _retry_policy(job)
        if policy.gives_up(job.attempts):
            return self.failed(job, f"gave up after {job.attempts} attempts: {error}")
        if after is not None and pause:
            self._pause(job, after)
        delay = after if after is not None else policy.delay(job.attempts)
        log.warning("job %s (%s) attempt %s: %s; again in %.0f s", job.id, job.kind, job.attempts, error, delay)
        return self._close(job, state=JobState.PENDING, last_error=error[:2000],
                           due_at=self.current() + timedelta(seconds=delay))

    def defer(self, job: Job, reason: str, after: float) -> bool:
        # Waiting is not a failed attempt.
        self._pause(job, after)
        return self._close(job, state=JobState.PENDING, last_error=reason,
                           attempts=max(0, job.attempts - 1), due_at=self.current() + timedelta(seconds=after))

    def release(self, jobs: Iterable[Job], reason: str, after: float) -> None:
        """Hand back jobs that were claimed but not tried (e.g. SMTP went away mid-batch)."""
        for job in jobs:
            self.defer(job, reason, after)

    def _pause(self, job: Job, after: float) -> None:
        """The other side asked us to wait `after` seconds (each job's wait carries its own
        jitter): no more of this kind for this seminar until the first of them is due again."""
        if self.pauses is None or after <= 0 or id(job) not in self.subjects:
            return
        key, until = self.subjects[id(job)], utcnow() + timedelta(seconds=after)
        self.asked[key] = min(until, self.asked.get(key, until))

    def claim_more(self, kind: str, seminar_id: int | None, limit: int) -> list[Job]:
        """Claim up to `limit` more due jobs of one kind for one seminar into this batch (e.g. to
        fill a platform call that takes 30 attendees at once)."""
        db.session.rollback()
        # Jobs that came due since the batch began count too.
        more = claim(self.worker_id, self.current(), limit, only=(kind, seminar_id)) if limit > 0 else []
        if self.pauses is not None:
            self.subjects.update({id(job): (job.kind, job.seminar_id) for job in more})
        return more

    def apply_pauses(self) -> None:
        for (kind, seminar_id), until in self.asked.items():
            self.pauses.add(kind, seminar_id, until)

    def run_each(self, jobs: list[Job], run: Callable[[Job], "Done | str | None"]) -> None:
        """Run jobs one by one with the usual outcomes; `run` returns a Done or an optional note."""
        for index, job in enumerate(jobs):
            try:
                result = run(job)
            except Defer as exc:
                self.defer(job, str(exc), exc.after)
            except Retry as exc:
                self.retry(job, str(exc), exc.after)
                if exc.release_rest:
                    self.release(jobs[index + 1:], f"not tried: {exc}", exc.after or backoff(1))
                    return
            except Fail as exc:
                self.failed(job, str(exc))
            except Exception as exc:  # a bug or an unexpected answer: retry, never lose the job
                log.exception("job %s (%s) raised", job.id, job.kind)
                self.retry(job, f"{exc.__class__.__name__}: {exc}")
            else:
                self.done(job, result)


_DONE_STATEMENTS: dict[tuple[str, ...], object] = {}


def _done_statement(fields: tuple[str, ...]):
    """UPDATE job SET state='done', … WHERE id = :id AND still claimed by this worker: built once
    per set of stored fields, so recording an outcome costs one execution of a cached statement."""
    statement = _DONE_STATEMENTS.get(fields)
    if statement is None:
        table = Job.__table__
        statement = _DONE_STATEMENTS[fields] = (
            table.update()
            .where(table.c.id == bindparam("b_id"), table.c.claimed_by == bindparam("b_worker"),
                   table.c.state == JobState.CLAIMED)
            .values(state=JobState.DONE, claimed_by=None, lease_until=None,
                    done_at=bindparam("b_done_at", type_=table.c.done_at.type),
                    last_error=bindparam("b_note", type_=table.c.last_error.type),
                    **{name: bindparam(f"b_{name}", type_=table.c[name].type) for name in fields})
        )
    return statement


def outcome_connection():
    """A database connection of the worker's own for recording outcomes while the session's
    objects are still in use (every transaction on it starts as a writer), or None where the
    engine has only one connection to give (SQLite in memory)."""
    if isinstance(db.engine.pool, (SingletonThreadPool, StaticPool)):
        return None
    return db.engine.connect().execution_options(**{WRITE_LOCK: True})


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff(attempts: int) -> float:
    """The default retry policy's wait after `attempts` (kinds.BACKOFF)."""
    return kinds.BACKOFF.delay(attempts)


def _retry_policy(job: Job) -> kinds.RetryPolicy:
    kind = kinds.get(job.kind)
    return kind.retry if kind is not None else kinds.BACKOFF


# Interactive work first (someone is waiting for it), then the rest, each by when it fell due.
LANE_ORDER = case((Job.lane == Lane.INTERACTIVE, 0), else_=1)


def due_jobs(now: datetime):
    """The condition for a job that may be claimed now: pending and due, or claimed by a worker
    whose lease ran out."""
    return or_(
        (Job.state == JobState.PENDING) & (Job.due_at <= now),
        (Job.state == JobState.CLAIMED) & (Job.lease_until < now),
    )


def claim(worker_id: str, now: datetime | None = None, limit: int | None = None,
          paused: list[tuple[str, int | None]] | None = None,
          only: tuple[str, int | None] | None = None) -> list[Job]:
    """Claim up to `limit` due jobs, interactive lane first, leaving out the `paused` (kind,
    seminar) pairs, or only of the kind and seminar in `only`."""
    now = now or utcnow()
    limit = limit or current_app.config["WORKER_BATCH_SIZE"]
    lease = timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
    condition = due_jobs(now)
    if paused:
        condition = condition & Pauses.exclude(paused)
    if only is not None:
        condition = condition & (Job.kind == only[0]) & (Job.seminar_id == only[1])
    candidates = (
        select(Job.id).where(condition).order_by(LANE_ORDER, Job.due_at, Job.id).limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with write_transaction():
        ids = list(db.session.scalars(
            update(Job)
            .where(Job.id.in_(candidates))
            .values(state=JobState.CLAIMED, claimed_by=worker_id,
                    lease_until=now + lease, attempts=Job.attempts + 1)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        ))
    if not ids:
        return []
    return list(db.session.scalars(select(Job).where(Job.id.in_(ids)).order_by(LANE_ORDER, Job.due_at, Job.id)))


def run_batch(worker_id: str | None = None, now: datetime | None = None, pauses: Pauses | None = None) -> int:
    """Claim one batch of due jobs and run it. Returns how many jobs were claimed."""
    worker_id = worker_id or new_worker_id()
    claimed = claim(worker_id, now, paused=pauses.active(now) if pauses is not None else None)
    by_runner: dict[BatchRunner, list[Job]] = defaultdict(list)
    unknown = []
    for job in claimed:
        kind = kinds.get(job.kind)
        if kind is None:
            unknown.append(job)
        else:
            by_runner[kind.run_batch()].append(job)
    subjects = {id(job): (job.kind, job.seminar_id) for job in claimed} if pauses is not None else None
    recorder = Recorder(worker_id, now or utcnow(), pauses, subjects)
    for job in unknown:
        recorder.failed(job, f"no handler for job kind {job.kind}")
    for run, jobs in by_runner.items():
        run(jobs, recorder)
    if pauses is not None:
        recorder.apply_pauses()
    return len(claimed)
