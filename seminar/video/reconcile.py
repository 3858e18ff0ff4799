"""Keeping the platform in step with our list.

- Nightly (at most once per 24 h per upcoming seminar, counted from the meeting's creation or the
  last reconcile): the meeting still exists with our details, everyone confirmed here is on the
  platform's list, nobody else is. Differences are put right and shown to organisers.
- After a platform webhook says a meeting changed or was deleted: the meeting is checked.
- After the seminar: attendance from the platform's report, for when webhooks were missed.

Our list is the truth; the platform is told, never asked, who is in.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..attendance.matching import Matcher, record_attendance
from ..database import write_transaction
from ..extensions import db
from ..jobs import kinds
from ..jobs.outcome import Done
from ..models import LIVE_STATES, Job, Registration, RegistrationStatus, Seminar, SeminarState
from ..timeutil import to_local, utcnow
from .base import AttendeeLink, PlatformError, Problem, VideoProvider
from .attendees import pending_adds
from .jobs import Providers, meeting_made_anew

log = logging.getLogger("seminar.video")

RECONCILE_EVERY = timedelta(hours=24)
LOOK_EVERY = timedelta(minutes=10)  # how often the worker looks whether anything is due
ATTENDANCE_AFTER = timedelta(hours=1)  # the platform's report is ready some time after the end
ATTENDANCE_WITHIN = timedelta(days=7)
RECONCILED = ("zoom", "teams")  # Jitsi keeps nothing to reconcile


# ---------------------------------------------------------------- jobs

def check_meeting(job: Job, providers: Providers) -> Done | str:
    """The platform's meeting has our details again; made anew when it was deleted."""
    seminar = job.seminar
    if not seminar.meeting_id or seminar.is_cancelled:
        return "nothing to check"
    seminar_id, meeting_id = seminar.id, seminar.meeting_id
    provider = providers.for_seminar(seminar)
    try:
        if provider.meeting_matches(seminar):
            return "meeting matches"
        provider.update_meeting(seminar)
    except PlatformError as exc:
        if exc.problem is Problem.GONE:
            return meeting_made_anew(seminar_id, meeting_id)
        raise
    log.warning("seminar %s: meeting details at %s differed; ours restored", seminar_id, provider.name)
    return "meeting details restored at the platform"


def reconcile(job: Job, providers: Providers) -> Done | str:
    seminar = job.seminar
    if not seminar.meeting_id or not seminar.is_published:
        return "nothing to reconcile"
    checked = check_meeting(job, providers)
    if isinstance(checked, Done):
        return checked
    differences = [] if checked == "meeting matches" else ["meeting details restored"]
    provider = providers.for_seminar(seminar)
    listed = provider.registrants(seminar)
    links: dict[int, AttendeeLink] = {}
    if listed is not None:
        confirmed = {reg.email_normalized: reg for reg in seminar.attendees()}
        approved = {r.email for r in listed if r.status == "approved"}
        busy = pending_adds(seminar.id)
        missing = [reg for email, reg in confirmed.items() if email not in approved and reg.id not in busy]
        extra = [r.registrant_id for r in listed if r.status == "approved" and r.email not in confirmed]
        outsiders = [r.registrant_id for r in listed if r.status == "pending" and r.email not in confirmed]
        links = _add_again(provider, seminar, missing)
        if extra:
            provider.cancel_registrants(seminar, extra)
        if outsiders:
            provider.cancel_registrants(seminar, outsiders, deny=True)
        if missing:
            differences.append(f"{len(links)} of {len(missing)} confirmed attendees missing at the "
                               "platform added again")
        if extra:
            differences.append(f"{len(extra)} registrations not confirmed here cancelled at the platform")
        if outsiders:
            differences.append(f"{len(outsiders)} registrations made outside this service denied")
    seminar_id = seminar.id
    message = None
    if differences:
        message = (f"Reconciled with {provider.name} on {to_local(utcnow()):%Y-%m-%d %H:%M}: "
                   + "; ".join(differences) + ".")
        log.warning("seminar %s: %s", seminar_id, message)

    def apply() -> None:
        for reg_id, link in links.items():
            reg = db.session.get(Registration, reg_id)
            if reg is None or reg.status != RegistrationStatus.CONFIRMED:
                continue
            reg.join_url, reg.platform_registrant_id = link.join_url, link.registrant_id
            # Someone whose add had failed for good never had their seat mail: it goes now.
            kinds.SEAT_CONFIRMED.enqueue(registration=reg, calendar="REQUEST")
        if message:
            db.session.get(Seminar, seminar_id).platform_error = message

    return Done(note=message or "in step with the platform", apply=apply)


def _add_again(provider: VideoProvider, seminar: Seminar, missing: list[Registration]) -> dict[int, AttendeeLink]:
    links: dict[int, AttendeeLink] = {}
    for start in range(0, len(missing), provider.batch_size):
        batch = missing[start:start + provider.batch_size]
        try:
            links.update(provider.add_attendees(seminar, batch))
        except PlatformError as exc:
            if not exc.registrations:
                raise
            # One address is over its daily limit: the others still go; it waits for tomorrow.
            rest = [reg for reg in batch if reg.id not in exc.registrations]
            if rest:
                links.update(provider.add_attendees(seminar, rest))
    return links


def fetch_attendance(job: Job, providers: Providers) -> Done | str:
    """Attendance from the platform's report, after the seminar (webhooks may have been missed)."""
    seminar = job.seminar
    if not seminar.meeting_id:
        return "no meeting"
    provider = providers.for_seminar(seminar)
    try:
        rows = provider.attendance(seminar)
    except PlatformError as exc:
        if exc.temporary:
            raise
        return f"no attendance report: {exc}"
    seminar_id = seminar.id
    matcher = Matcher(seminar_id)  # by registrant id, then by address

    def apply() -> None:
        for row in rows:
            reg_id = matcher.match(row.registrant_id, row.email)
            for event, at in (("joined", row.joined_at), ("left", row.left_at)):
                if at is not None:
                    record_attendance(seminar_id, reg_id, event, at, row.participant_id, row.source,
                                      guest=row.name or row.email)

    return Done(note=f"{len(rows)} rows in the platform's report", apply=apply)


# ---------------------------------------------------------------- the periodic hook

def schedule_platform_checks(now: datetime | None = None) -> int:
    """Queue the nightly reconcile and the attendance fetch where due. Cheap when nothing is:
    the worker calls it every round, it looks every ten minutes."""
    now = now or utcnow()
    state = current_app.extensions.setdefault("seminar.video", {})
    if state.get("next_look") and now < state["next_look"]:
        return 0
    state["next_look"] = now + LOOK_EVERY
    queued = _retry_failed_creates(now)
    seminars = db.session.scalars(select(Seminar).where(
        Seminar.state == SeminarState.PUBLISHED, Seminar.video_provider.in_(RECONCILED),
        Seminar.meeting_id.is_not(None), Seminar.start_at > now - ATTENDANCE_WITHIN)).all()
    if not seminars:
        db.session.rollback()
        return queued
    since = now - RECONCILE_EVERY
    fresh = set(db.session.scalars(select(Job.seminar_id).where(
        ((Job.kind == kinds.RECONCILE.name) & (Job.created_at > since))
        | ((Job.kind == kinds.CREATE_MEETING.name) & (Job.done_at > since)))))
    fetched = set(db.session.scalars(select(Job.seminar_id).where(Job.kind == kinds.ATTENDANCE.name)))
    to_reconcile = [s for s in seminars if s.start_at > now and s.id not in fresh]
    to_fetch = [s for s in seminars if s.video_provider in ("zoom", "teams") and s.id not in fetched
                and s.end_at + ATTENDANCE_AFTER <= now]
    if not (to_reconcile or to_fetch):
        db.session.rollback()
        return queued
    with write_transaction():
        for seminar in to_reconcile:
            job = kinds.RECONCILE.enqueue(seminar=seminar, due_at=now)
            job.created_at = now  # what the next look counts 24 h from
        for seminar in to_fetch:
            kinds.ATTENDANCE.enqueue(seminar=seminar, due_at=now)
    return queued + len(to_reconcile) + len(to_fetch)


def _retry_failed_creates(now: datetime) -> int:
    """A published seminar whose meeting could not be made (its job gave up, e.g. while the
    platform was down for hours) gets a new try once a day, so its attendees are not stuck."""
    without = db.session.scalars(select(Seminar.id).where(
        Seminar.state == SeminarState.PUBLISHED, Seminar.meeting_id.is_(None),
        Seminar.start_at > now)).all()
    if not without:
        return 0
    busy = set(db.session.scalars(select(Job.seminar_id).where(
        Job.kind == kinds.CREATE_MEETING.name, Job.seminar_id.in_(without),
        Job.state.in_(LIVE_STATES)
        | (Job.created_at > now - RECONCILE_EVERY))))
    stuck = [seminar_id for seminar_id in without if seminar_id not in busy]
    if not stuck:
        return 0
    with write_transaction():
        for seminar_id in stuck:
            log.warning("seminar %s: its meeting was never made; trying again", seminar_id)
            job = kinds.CREATE_MEETING.enqueue(seminar=db.session.get(Seminar, seminar_id), due_at=now)
            job.created_at = now
    return len(stuck)
