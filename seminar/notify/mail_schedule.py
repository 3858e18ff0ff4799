"""Bulk mail against the relay's quota: start a fan-out early enough, and say when it is done.

600 reminders due at 09:00 through a relay that takes 30 a minute need 20 minutes: they start at
08:40 (`start_early`, run by the worker's housekeeping), so the last one still goes out by 09:00.
The portal shows, for a seminar whose mail is going out, how many are left and about when the
last will have gone (`progress`).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import func, select, update

from ..extensions import db
from ..jobs import kinds
from ..models import LIVE_STATES, Job, JobState, Lane, Seminar
from ..timeutil import utcnow
from .relay.budget import BULK, Budget

HORIZON = timedelta(days=1)  # looked this far ahead (a day's quota is the longest that matters)
LOOK_AHEAD_ROWS = 20_000
BUDGET_KEY = "seminar.relay_budget"


def budget(app: Flask | None = None) -> Budget:
    """A budget for reading (the portal, housekeeping); the worker's sender has its own."""
    app = app or current_app._get_current_object()
    found = app.extensions.get(BUDGET_KEY)
    if found is None:
        found = app.extensions[BUDGET_KEY] = Budget.from_config(app.config, db.engine)
    return found


def _bulk_mail():
    return Job.kind.in_([kind.name for kind in kinds.mails()]) & (Job.lane == Lane.BULK)


def start_early(now: datetime | None = None) -> int:
    """Make bulk mail due now when the quota could not otherwise send it by its due time.
    Returns how many jobs were moved forward. Without a known quota nothing moves.

    Each job is moved only once its own group (every bulk mail due at or before it, the backlog
    due now first) needs to start for the last of them to go by its due time (`Quota.lead`):
    never further forward than that group's fan-out takes, so mail due tomorrow stays tomorrow's
    however much is queued today. Whatever is due before a job that moves, moves with it."""
    relay = budget()
    quota = relay.quota
    if not quota.known:
        return 0
    if relay.status().held:
        return 0  # the quota is used up: nothing goes sooner by moving it (and held mail is not due)
    now = now or utcnow()
    backlog = db.session.scalar(select(func.count()).select_from(Job).where(
        _bulk_mail(), Job.state.in_(LIVE_STATES), Job.due_at <= now)) or 0
    upcoming = db.session.execute(
        select(Job.id, Job.due_at).where(_bulk_mail(), Job.state == JobState.PENDING,
                                         Job.due_at > now, Job.due_at <= now + HORIZON)
        .order_by(Job.due_at, Job.id).limit(LOOK_AHEAD_ROWS)).all()
    dues = [due for _, due in upcoming]
    horizon = HORIZON.total_seconds()
    must_move = [rank for rank, due in enumerate(dues)
                 if now + timedelta(seconds=quota.lead(backlog, bisect_right(dues, due), horizon)) >= due]
    if not must_move:
        db.session.rollback()
        return 0
    # Mail due before a job that moves goes with it: claims go by due time, so a digest due at
    # 08:55 left in place would wait behind 09:00's reminders moved to 08:39.
    ids = [job_id for job_id, _ in upcoming[:must_move[-1] + 1]]
    for start in range(0, len(ids), 500):
        db.session.execute(update(Job).where(Job.id.in_(ids[start:start + 500]),
                                             Job.state == JobState.PENDING)
                           .values(due_at=now).execution_options(synchronize_session=False))
    db.session.commit()
    return len(ids)


@dataclass(frozen=True)
class Progress:
    left: int                  # bulk mails of this seminar still to go out now
    done_at: datetime | None   # about when the last of them will have gone (None: not known yet)
    held: bool                 # held back: the relay's quota is used up


def progress(seminar: Seminar, now: datetime | None = None) -> Progress | None:
    """The seminar's running fan-out (bulk mail due now, not yet sent), or None."""
    now = now or utcnow()
    mine = db.session.execute(
        select(func.count(), func.max(Job.due_at), func.max(Job.id))
        .where(_bulk_mail(), Job.state.in_(LIVE_STATES), Job.due_at <= now, Job.seminar_id == seminar.id)).one()
    left, last_due, last_id = mine
    if not left:
        return None
    # Everything due before its last mail goes first (the worker claims in due order).
    ahead = db.session.scalar(select(func.count()).select_from(Job).where(
        _bulk_mail(), Job.state.in_(LIVE_STATES), Job.due_at <= now,
        (Job.due_at < last_due) | ((Job.due_at == last_due) & (Job.id <= last_id)))) or left
    relay = budget()
    state = relay.read()  # once: the page asks for both
    seconds = relay.seconds_for(ahead, BULK, state)
    return Progress(left, None if seconds is None else now + timedelta(seconds=seconds), relay.status(state).held)
