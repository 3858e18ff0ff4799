"""Recording what became of each claimed job, in the database, while the worker still holds it.

Each outcome is committed on its own, right after the job ran, together with what the job changed
(`Done.apply`): a join URL and the mail that follows land exactly when the job is marked done.
Mails the SMTP server accepted one after the other are recorded together (`done_together`). An
outcome is written only while this worker still holds the job's lease; if another worker took it
over meanwhile, the outcome is left to them.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Callable, Iterable, Protocol

from sqlalchemy import bindparam, inspect, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..database import WRITE_LOCK, write_transaction
from ..extensions import db
from ..models import Job, JobState
from ..timeutil import utcnow
from . import kinds
from .outcome import Defer, Done, Fail, Retry

log = logging.getLogger("seminar.worker")


class BatchContext(Protocol):
    """What the recorder needs of the batch it records (runner.Batch)."""

    worker_id: str

    def now(self): ...

    def ask_to_wait(self, job: Job, after: float) -> None: ...

    def claim_next(self, names: list[str]) -> list[Job]: ...


class LeaseLost(Exception):
    """The worker's lease on a job ran out and another worker took it."""


class Recorder:
    """Records the outcome of each job of one claimed batch."""

    def __init__(self, batch: BatchContext):
        self.batch = batch

    @staticmethod
    def job_id(job: Job) -> int:
        """The job's id without reading the row again (every outcome's commit expires what the
        session holds, and a batch's jobs are all in it)."""
        identity = inspect(job).identity
        return identity[0] if identity else job.id

    def done(self, job: Job, result: Done | str | None = None) -> bool:
        if not isinstance(result, Done):
            result = Done(note=result)
        return self._close(job, result.apply, state=JobState.DONE, done_at=utcnow(),
                           last_error=result.note, **result.fields)

    def done_together(self, results: list[tuple[Job, Done]], connection=None) -> None:
        """Record several jobs as done in one transaction: what one platform call did for thirty
        attendees, or mails the SMTP server accepted one after the other. With `connection` (one
        of the worker's own, see `outcome_connection`) and nothing to apply, it is written there,
        so the session keeps the batch's objects loaded for the mails still to be composed. The
        rows are written in order, each one's `apply` right after it."""
        if not results:
            return
        rows = [(self.job_id(job), result) for job, result in results]
        done_at = utcnow()
        if connection is not None and all(result.apply is None for _, result in results):
            # Nothing to apply: one executemany per set of stored fields (rowcount is their sum).
            groups: dict[tuple[str, ...], list[tuple[int, dict]]] = defaultdict(list)
            for job_id, result in rows:
                groups[tuple(sorted(result.fields))].append((job_id, self._done_values(job_id, result, done_at)))
            with connection.begin():
                for fields, group in groups.items():
                    recorded = connection.execute(_done_statement(fields), [values for _, values in group]).rowcount
                    if recorded != len(group):
                        log.warning("jobs %s: %d of their leases lost before their outcomes were recorded",
                                    ", ".join(str(job_id) for job_id, _ in group), len(group) - recorded)
            return
        db.session.rollback()
        with write_transaction():
            for job_id, result in rows:
                statement = _done_statement(tuple(sorted(result.fields)))
                if db.session.execute(statement, self._done_values(job_id, result, done_at)).rowcount != 1:
                    log.warning("job %s: lease lost before its outcome was recorded", job_id)
                elif result.apply is not None:
                    result.apply()

    def failed(self, job: Job, error: str) -> bool:
        log.error("job %s (%s) failed permanently: %s", job.id, job.kind, error)
        return self._close(job, state=JobState.FAILED, done_at=utcnow(), last_error=error[:2000])

    def retry(self, job: Job, error: str, after: float | None = None, pause: bool = True) -> bool:
        """Run the job again later. `after`: the other side's wish (Retry-After), which also
        pauses this kind of job for this seminar unless `pause` is False (a wait that concerns
        this one job only); else the kind's retry policy."""
        kind = kinds.get(job.kind)
        policy = kind.retry if kind is not None else kinds.BACKOFF
        if policy.gives_up(job.attempts):
            return self.failed(job, f"gave up after {job.attempts} attempts: {error}")
        if after is not None and pause:
            self.batch.ask_to_wait(job, after)
        delay = after if after is not None else policy.delay(job.attempts)
        log.warning("job %s (%s) attempt %s: %s; again in %.0f s", job.id, job.kind, job.attempts, error, delay)
        return self._close(job, state=JobState.PENDING, last_error=error[:2000],
                           due_at=self.batch.now() + timedelta(seconds=delay))

    def defer(self, job: Job, reason: str, after: float) -> bool:
        """Hand the job back to run after `after` seconds: waiting is not a failed attempt."""
        self.batch.ask_to_wait(job, after)
        return self._close(job, state=JobState.PENDING, last_error=reason, attempts=max(0, job.attempts - 1),
                           due_at=self.batch.now() + timedelta(seconds=after))

    def release(self, jobs: Iterable[Job], reason: str, after: float) -> None:
        """Hand back jobs that were claimed but not tried (e.g. SMTP went away mid-batch)."""
        for job in jobs:
            self.defer(job, reason, after)

    def run_each(self, jobs: list[Job], run: Callable[[Job], Done | str | None]) -> None:
        """Run jobs one by one with the usual outcomes; `run` returns a Done or an optional note."""
        for index, job in enumerate(jobs):
            try:
                result = run(job)
            except Defer as exc:
                self.defer(job, str(exc), exc.after)
            except Retry as exc:
                self.retry(job, str(exc), exc.after)
                if exc.release_rest:
                    self.release(jobs[index + 1:], f"not tried: {exc}", exc.after or kinds.BACKOFF.delay(1))
                    return
            except Fail as exc:
                self.failed(job, str(exc))
            except Exception as exc:  # a bug or an unexpected answer: retry, never lose the job
                log.exception("job %s (%s) raised", job.id, job.kind)
                self.retry(job, f"{exc.__class__.__name__}: {exc}")
            else:
                self.done(job, result)

    def _close(self, job: Job, apply: Callable[[], None] | None = None, **values) -> bool:
        """Write one outcome in a transaction of its own that starts as a writer (anything read so
        far is let go first; see database.write_transaction), if the job is still ours."""
        job_id = self.job_id(job)
        db.session.rollback()
        ours = update(Job).where(Job.id == job_id, Job.claimed_by == self.batch.worker_id,
                                 Job.state == JobState.CLAIMED).execution_options(synchronize_session=False)
        try:
            with write_transaction():
                try:
                    if values.get("state") != JobState.PENDING:  # only pending jobs hold keys
                        result = db.session.execute(ours.values(claimed_by=None, lease_until=None, **values))
                    else:
                        with db.session.begin_nested():
                            result = db.session.execute(ours.values(claimed_by=None, lease_until=None, **values))
                except IntegrityError:
                    # Handed back to pending while another job waits under its key (queued while
                    # this one ran): that one does the same intent on newer data.
                    result = db.session.execute(ours.values(
                        claimed_by=None, lease_until=None, state=JobState.DONE, done_at=utcnow(),
                        last_error="superseded"))
                    apply = None
                if result.rowcount != 1:
                    raise LeaseLost()
                if apply is not None:
                    apply()
        except LeaseLost:
            log.warning("job %s: lease lost before its outcome was recorded", job_id)
            return False
        return True

    def _done_values(self, job_id: int, result: Done, done_at) -> dict:
        values = {"b_id": job_id, "b_worker": self.batch.worker_id, "b_done_at": done_at, "b_note": result.note}
        values.update({f"b_{name}": value for name, value in result.fields.items()})
        return values


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
