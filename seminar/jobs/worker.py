"""The worker process: housekeeping and batches of jobs, until it is told to stop."""
from __future__ import annotations

import logging
import os
import signal
import time
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..models import Job, JobState
from ..timeutil import utcnow
from .periodic import run_periodic
from .runner import Pauses, new_worker_id, run_batch

log = logging.getLogger("seminar.worker")


def run_due(now: datetime | None = None, worker_id: str | None = None, max_batches: int = 10_000) -> int:
    """Everything due now, batch after batch (`worker --once`). Returns how many jobs ran."""
    worker_id = worker_id or new_worker_id()
    run_periodic(now)
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
                run_periodic()
                housekeeping_due = time.monotonic() + HOUSEKEEPING_SECONDS
            busy = run_batch(worker_id, pauses=pauses, stopping=lambda: bool(stopping))
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
    pending = Job.state == JobState.PENDING
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
