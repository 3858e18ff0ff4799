"""The worker: claims due jobs in batches and runs them.

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
import random
import signal
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from flask import current_app
from sqlalchemy import bindparam, func, inspect, or_, select, update
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..database import WRITE_LOCK, write_transaction
from ..extensions import db
from ..models import Job, JobState
from ..timeutil import utcnow

log = logging.getLogger("seminar.worker")


class Retry(Exception):
    """A temporary failure: run the job again after a backoff (or after `after` seconds)."""

    def __init__(self, message: str, after: float | None = None, release_rest: bool = False):
        super().__init__(message)
        self.after = after
        self.release_rest = release_rest


class Defer(Exception):
    """Not a failure: the job waits for something else (e.g. the meeting to exist)."""

    def __init__(self, message: str, after: float = 5.0):
        super().__init__(message)
        self.after = after


class Fail(Exception):
    """A permanent failure: mark the job failed and show it to organisers."""


@dataclass
class Done:
    """A job's successful result. `apply` runs, and `fields` are stored on the job, in the same
    transaction that marks it done: handlers call the outside world without writing anything,
    so their effects land exactly when the job is recorded as done."""

    note: str | None = None
    apply: Callable[[], None] | None = None
    fields: dict = field(default_factory=dict)


class LeaseLost(Exception):
    pass


# A handler runs a batch of claimed jobs of one family and reports each job's outcome through
# the `Outcome` it is given. Families: the part of the kind before the dot ("mail", "video", …).
Handler = Callable[[list[Job], "Outcome"], None]
HANDLERS: dict[str, Handler] = {}


def handler(family: str):
    def register(fn: Handler) -> Handler:
        HANDLERS[family] = fn
        return fn
    return register


def backoff(attempts: int, base: float = 30.0, cap: float = 3600.0) -> float:
    """Exponential backoff with jitter, so retries of many jobs spread out instead of stampeding."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(0.5, 1.0)


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


class Outcome:
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
                           Job.state == JobState.CLAIMED.value)
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
        return self._close(job, result.apply, state=JobState.DONE.value, done_at=utcnow(),
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
        return self._close(job, state=JobState.FAILED.value, done_at=utcnow(), last_error=error[:2000])

    def current(self) -> datetime:
        """Now, on the batch's clock: when it began plus the time it has taken so far (a batch of
        platform calls can take a while, and a wait asked for counts from when it was asked)."""
        return self.now + timedelta(seconds=time.monotonic() - self.began)

    def retry(self, job: Job, error: str, after: float | None = None, pause: bool = True) -> bool:
        """Run the job again later. `after`: the other side's wish (Retry-After), which also
        pauses this kind of job for this seminar unless `pause` is False (a wait that concerns
        this one job only); else our own backoff."""
        if job.attempts >= current_app.config["WORKER_MAX_ATTEMPTS"]:
            return self.failed(job, f"gave up after {job.attempts} attempts: {error}")
        if after is not None and pause:
            self._pause(job, after)
        delay = after if after is not None else backoff(job.attempts)
        log.warning("job %s (%s) attempt %s: %s; again in %.0f s", job.id, job.kind, job.attempts, error, delay)
        return self._close(job, state=JobState.PENDING.value, last_error=error[:2000],
                           due_at=self.current() + timedelta(seconds=delay))

    def defer(self, job: Job, reason: str, after: float) -> bool:
        # Waiting is not a failed attempt.
        self._pause(job, after)
        return self._close(job, state=JobState.PENDING.value, last_error=reason,
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
                   table.c.state == JobState.CLAIMED.value)
            .values(state=JobState.DONE.value, claimed_by=None, lease_until=None,
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


def claim(worker_id: str, now: datetime | None = None, limit: int | None = None,
          paused: list[tuple[str, int | None]] | None = None,
          only: tuple[str, int | None] | None = None) -> list[Job]:
    """Claim up to `limit` due jobs (pending and due, or claimed with an expired lease), leaving
    out the `paused` (kind, seminar) pairs, or only of the kind and seminar in `only`."""
    now = now or utcnow()
    limit = limit or current_app.config["WORKER_BATCH_SIZE"]
    lease = timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
    due = or_(
        (Job.state == JobState.PENDING.value) & (Job.due_at <= now),
        (Job.state == JobState.CLAIMED.value) & (Job.lease_until < now),
    )
    if paused:
        due = due & Pauses.exclude(paused)
    if only is not None:
        due = due & (Job.kind == only[0]) & (Job.seminar_id == only[1])
    candidates = (
        select(Job.id).where(due).order_by(Job.due_at, Job.id).limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with write_transaction():
        ids = list(db.session.scalars(
            update(Job)
            .where(Job.id.in_(candidates))
            .values(state=JobState.CLAIMED.value, claimed_by=worker_id,
                    lease_until=now + lease, attempts=Job.attempts + 1)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        ))
    if not ids:
        return []
    return list(db.session.scalars(select(Job).where(Job.id.in_(ids)).order_by(Job.due_at, Job.id)))


def run_batch(worker_id: str | None = None, now: datetime | None = None, pauses: Pauses | None = None) -> int:
    """Claim one batch of due jobs and run it. Returns how many jobs were claimed."""
    from .. import jobs  # noqa: F401  (registers every handler family)

    worker_id = worker_id or new_worker_id()
    claimed = claim(worker_id, now, paused=pauses.active(now) if pauses is not None else None)
    by_family: dict[str, list[Job]] = defaultdict(list)
    for job in claimed:
        by_family[job.kind.partition(".")[0]].append(job)
    subjects = {id(job): (job.kind, job.seminar_id) for job in claimed} if pauses is not None else None
    outcome = Outcome(worker_id, now or utcnow(), pauses, subjects)
    for family, family_jobs in by_family.items():
        run = HANDLERS.get(family)
        if run is None:
            for job in family_jobs:
                outcome.failed(job, f"no handler for job kind {job.kind}")
            continue
        run(family_jobs, outcome)
    if pauses is not None:
        outcome.apply_pauses()
    return len(claimed)


def run_due(now: datetime | None = None, worker_id: str | None = None, max_batches: int = 10_000) -> int:
    """Everything due now, batch after batch (`worker --once`). Returns how many jobs ran."""
    from .. import jobs

    worker_id = worker_id or new_worker_id()
    jobs.run_periodic(now)
    total = 0
    for _ in range(max_batches):
        count = run_batch(worker_id, now)
        if count == 0:
            break
        total += count
    return total


def lower_priority() -> None:
    """The web processes answer people; the worker's sending can wait a moment. On a small
    server (`make run`: gunicorn and the worker on the same 2 cores) a burst of sign-ups would
    otherwise share the CPU with the worker mailing their confirmation links. WORKER_NICE (default
    10, 0 leaves it) lowers the worker's CPU priority: under load gunicorn gets the cores first, and
    the worker uses whatever is left, which on an idle machine is all of it."""
    try:
        step = int(os.environ.get("WORKER_NICE", "10"))
    except ValueError:
        step = 10
    if step > 0:
        try:
            os.nice(step)
        except OSError:  # not allowed here: run as it is
            pass


HOUSEKEEPING_SECONDS = 5.0  # run_periodic's checks (lapsing, purge, platform checks) at most this often


def run_forever() -> None:  # pragma: no cover - exercised by the end-to-end tests as a process
    from .. import jobs

    lower_priority()
    worker_id = new_worker_id()
    poll = current_app.config["WORKER_POLL_SECONDS"]
    pauses = Pauses()
    housekeeping_due = 0.0
    stopping = []

    def stop(signum, frame) -> None:
        # SIGTERM (make run's Ctrl-C, systemd, docker stop): finish the batch in hand, so what
        # the outside world already accepted is recorded, then leave.
        log.info("worker %s stopping after this batch", worker_id)
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    log.info("worker %s started", worker_id)
    while not stopping:
        wait = poll
        try:
            if time.monotonic() >= housekeeping_due:
                jobs.run_periodic()
                housekeeping_due = time.monotonic() + HOUSEKEEPING_SECONDS
            busy = run_batch(worker_id, pauses=pauses)
            if not busy:
                wait = idle_wait(poll, pauses)
        except Exception:
            # The database may be briefly away: log, wait, go on. Nothing is lost; jobs stay queued.
            log.exception("worker loop failed; retrying")
            db.session.rollback()
            busy = 0
        db.session.remove()
        if not busy and not stopping:
            time.sleep(wait)
    log.info("worker %s stopped", worker_id)


def idle_wait(poll: float, pauses: Pauses | None = None, least: float = 0.05) -> float:
    """How long an idle worker sleeps: until the next pending job it may claim falls due (or a
    pause ends), at most `poll`.

    Work handed back for a moment (a platform's Retry-After of one second, a meeting about to be
    made) is then taken again when it is due, not up to a whole poll interval later."""
    now = utcnow()
    pending = Job.state == JobState.PENDING.value
    paused = pauses.active(now) if pauses is not None else []
    if paused:
        pending = pending & Pauses.exclude(paused)
    moments = [db.session.scalar(select(func.min(Job.due_at)).where(pending))]
    db.session.rollback()
    if paused:
        moments.append(pauses.next_end())
    moments = [m.replace(tzinfo=timezone.utc) if m.tzinfo is None else m for m in moments if m is not None]
    if not moments:
        return poll
    return max(least, min(poll, (min(moments) - now).total_seconds()))
