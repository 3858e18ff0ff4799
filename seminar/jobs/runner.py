"""The runner: claims due jobs in batches, interactive lane first, and runs each batch.

- A job is claimed by one worker at a time: claims are a single UPDATE over
  `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, and under SQLite's write lock.
- A claim is a lease. Work claimed by a worker that died is taken again once the lease expires.
- Claimed jobs go to their kind's batch runner (kinds.py) with a `Recorder` (recorder.py), which
  commits each job's outcome while the lease is still held. docs/DELIVERY.md has the guarantees.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import case, func, or_, select, update

from ..database import write_transaction
from ..extensions import db
from ..models import Job, JobState, Lane
from ..timeutil import utcnow
from . import kinds
from .recorder import Recorder

# A batch runner (a kind's `batch`, kinds.py) runs the claimed jobs of its kinds and reports each
# job's outcome through the `Recorder` it is given.
BatchRunner = Callable[[list[Job], Recorder], None]


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


# A batch runner may go on claiming work of its own kinds into its batch (`Batch.claim_next`) for
# this long at most; then the batch ends, and the worker does its housekeeping.
CHAIN_SECONDS = 30.0


class Batch:
    """One claimed batch: whose it is, its clock, the waits the other side asked for while it ran,
    and more work claimed into it (`claim_more`, `claim_next`)."""

    def __init__(self, worker_id: str, started: datetime, pauses: Pauses | None = None,
                 claimed: list[Job] = (), stopping: Callable[[], bool] | None = None):
        self.worker_id = worker_id
        self.stopping = stopping or (lambda: False)  # the worker was told to stop (SIGTERM)
        self.runners_left = 0  # batch runners still to run after the one running now
        self.started = started  # when the batch began (tests pass a moment of their own)
        self.began = time.monotonic()
        self.pauses = pauses
        # What each job is about, read when it was claimed (its attributes expire with each commit).
        self.subjects = {id(job): (job.kind, job.seminar_id) for job in claimed} if pauses is not None else {}
        self.waits: dict[tuple[str, int | None], datetime] = {}  # asked for in this batch, until when

    def now(self) -> datetime:
        """Now, on the batch's clock: when it began plus the time it has taken so far (a batch of
        platform calls can take a while, and a wait asked for counts from when it was asked)."""
        return self.started + timedelta(seconds=time.monotonic() - self.began)

    def ask_to_wait(self, job: Job, after: float) -> None:
        """The other side asked us to wait `after` seconds (each job's wait carries its own
        jitter): no more of this kind for this seminar until the first of them is due again."""
        if self.pauses is None or after <= 0 or id(job) not in self.subjects:
            return
        subject, until = self.subjects[id(job)], utcnow() + timedelta(seconds=after)
        self.waits[subject] = min(until, self.waits.get(subject, until))

    def claim_more(self, kind: str, seminar_id: int | None, limit: int) -> list[Job]:
        """Claim up to `limit` more due jobs of one kind for one seminar into this batch (e.g. to
        fill a platform call that takes 30 attendees at once). Jobs that came due since the batch
        began count too."""
        db.session.rollback()
        more = claim(self.worker_id, self.now(), limit, only=(kind, seminar_id)) if limit > 0 else []
        if self.pauses is not None:
            self.subjects.update({id(job): (job.kind, job.seminar_id) for job in more})
        return more

    def claim_next(self, names: list[str]) -> list[Job]:
        """The next due jobs of these kinds, claimed into this batch while it runs, as any claim
        would take them (interactive first, bulk keeping its share and capped, paused work left
        out, and the waits asked for in this batch too): a batch runner keeps its work flowing
        without a pause between batches (the mail runner: the relay's connections never wait for
        the next claim). Nothing when the batch should end instead: other work of this batch still
        to run, other work due, the worker stopping, or the batch running CHAIN_SECONDS."""
        if self.runners_left or self.stopping() or time.monotonic() - self.began > CHAIN_SECONDS:
            return []
        db.session.rollback()
        now = self.now()
        paused = (self.pauses.active(now) if self.pauses is not None else []) + list(self.waits)
        others = due_jobs(now) & Job.kind.not_in(names)
        if paused:
            others = others & Pauses.exclude(paused)
        if db.session.scalar(select(Job.id).where(others).limit(1)) is not None:
            db.session.rollback()
            return []
        more = claim(self.worker_id, now, paused=paused, of_kinds=names)
        if self.pauses is not None:
            self.subjects.update({id(job): (job.kind, job.seminar_id) for job in more})
        return more

    def keep_waits(self) -> None:
        """Hand the waits asked for to the worker's pauses, for the batches to come."""
        if self.pauses is not None:
            for (kind, seminar_id), until in self.waits.items():
                self.pauses.add(kind, seminar_id, until)


# Interactive work first (someone is waiting for it), then the rest, each by when it fell due.
LANE_ORDER = case((Job.lane == Lane.INTERACTIVE, 0), else_=1)


def due_jobs(now: datetime):
    """The condition for a job that may be claimed now: pending and due, or claimed by a worker
    whose lease ran out."""
    return or_(
        (Job.state == JobState.PENDING) & (Job.due_at <= now),
        (Job.state == JobState.CLAIMED) & (Job.lease_until < now),
    )


# Of a batch, this share is kept for bulk work while it waits, so a stream of interactive work
# can't starve it (the relay sender keeps the same share per message).
BULK_SHARE = 4  # one in four
# Caps on the bulk jobs of one batch runner per claim, e.g. the mail runner's: no more bulk mail
# than the relay takes in a few seconds, so a batch ends soon and a person's mail that comes in
# meanwhile is claimed in the next one instead of waiting behind a long batch. Registered by the
# runner's module: {"module:function": () -> cap or None}.
BULK_CAPS: dict[str, Callable[[], int | None]] = {}


def _candidates(condition, limit: int) -> list[tuple[int, datetime]]:
    return list(db.session.execute(
        select(Job.id, Job.due_at).where(condition).order_by(Job.due_at, Job.id).limit(limit)
        .with_for_update(skip_locked=True)))


def _choose(condition, limit: int) -> list[int]:
    """Ids to claim: interactive first; bulk keeps a share while it waits; bulk of a capped
    batch runner no more than its cap."""
    interactive = _candidates(condition & (Job.lane == Lane.INTERACTIVE), limit)
    bulk = condition & (Job.lane == Lane.BULK)
    capped: list[tuple[int, datetime]] = []
    for runner, cap in BULK_CAPS.items():
        names = [kind.name for kind in kinds.ALL if kind.batch == runner]
        bulk = bulk & Job.kind.not_in(names)
        most = cap()
        capped += _candidates(condition & (Job.lane == Lane.BULK) & Job.kind.in_(names),
                              limit if most is None else min(limit, most)) if most != 0 else []
    waiting = sorted(_candidates(bulk, limit) + capped, key=lambda row: (row[1], row[0]))
    take_bulk = min(len(waiting), max(limit // BULK_SHARE, limit - len(interactive)))
    return [row[0] for row in interactive[:limit - take_bulk]] + [row[0] for row in waiting[:take_bulk]]


def claim(worker_id: str, now: datetime | None = None, limit: int | None = None,
          paused: list[tuple[str, int | None]] | None = None,
          only: tuple[str, int | None] | None = None, of_kinds: list[str] | None = None) -> list[Job]:
    """Claim up to `limit` due jobs, interactive lane first (bulk keeping a share, see
    `_choose`), leaving out the `paused` (kind, seminar) pairs, only of the kind and seminar
    in `only`, or only of the kinds named in `of_kinds`."""
    now = now or utcnow()
    limit = limit or current_app.config["WORKER_BATCH_SIZE"]
    lease = timedelta(seconds=current_app.config["WORKER_LEASE_SECONDS"])
    condition = due_jobs(now)
    if paused:
        condition = condition & Pauses.exclude(paused)
    if only is not None:
        condition = condition & (Job.kind == only[0]) & (Job.seminar_id == only[1])
    if of_kinds is not None:
        condition = condition & Job.kind.in_(of_kinds)
    with write_transaction():
        chosen = _choose(condition, limit)
        ids = list(db.session.scalars(
            update(Job)
            .where(Job.id.in_(chosen), due_jobs(now))
            .values(state=JobState.CLAIMED, claimed_by=worker_id,
                    lease_until=now + lease, attempts=Job.attempts + 1)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )) if chosen else []
    if not ids:
        return []
    return list(db.session.scalars(select(Job).where(Job.id.in_(ids)).order_by(LANE_ORDER, Job.due_at, Job.id)))


def run_batch(worker_id: str | None = None, now: datetime | None = None, pauses: Pauses | None = None,
              stopping: Callable[[], bool] | None = None) -> int:
    """Claim one batch of due jobs and run it. Returns how many jobs were claimed at first
    (a runner may claim more into the batch, see `Batch.claim_next`)."""
    worker_id = worker_id or new_worker_id()
    claimed = claim(worker_id, now, paused=pauses.active(now) if pauses is not None else None)
    batch = Batch(worker_id, now or utcnow(), pauses, claimed, stopping)
    recorder = Recorder(batch)
    by_runner: dict[BatchRunner, list[Job]] = defaultdict(list)
    for job in claimed:
        kind = kinds.get(job.kind)
        if kind is None:
            recorder.failed(job, f"no handler for job kind {job.kind}")
        else:
            by_runner[kind.run_batch()].append(job)
    for left, (run, jobs) in enumerate(by_runner.items(), start=1):
        batch.runners_left = len(by_runner) - left
        run(jobs, recorder)
    batch.keep_waits()
    return len(claimed)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
