"""Follow-up after the seminar, through the worker.

`FOLLOW_UP_DELAY_MINUTES` after a seminar ends (per seminar in the portal; a hold switch keeps it
back) one `attendance.follow_up` job decides who attended and queues, per person:
- attendees: `attendance.certificate` (issues the certificate record), which then queues the
  thank-you mail with the PDF attached (made when the mail is composed; a PDF that cannot be made
  fails that mail visibly in the outbox, retried like any mail);
- absentees: the mail with the recording link and the next seminars;
and the attendance summary for the hosts and organisers. Nobody who cancelled hears anything; a
cancelled seminar sends nothing. Every mail has a key per person, so running the follow-up again
(released from hold, moved seminar) never mails anyone twice.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..database import write_transaction
from ..extensions import db
from ..jobs import kinds
from ..jobs.outcome import Defer, Done, Fail
from ..models import LIVE_STATES, Job, Registration, RegistrationStatus, Seminar, SeminarState, User
from ..timeutil import utcnow
from . import certificates
from .models import Certificate
from .service import summary, summary_row

log = logging.getLogger("seminar.attendance")

LOOK_BACK = timedelta(days=30)  # a follow-up not sent within this long after the seminar is not sent
REPORT_WAIT = 300.0  # seconds: the platform's attendance report is still being fetched


def delay(seminar: Seminar) -> timedelta:
    minutes = seminar.follow_up_delay_minutes
    if minutes is None:
        minutes = current_app.config["FOLLOW_UP_DELAY_MINUTES"]
    return timedelta(minutes=minutes)


def due_at(seminar: Seminar) -> datetime:
    return seminar.end_at + delay(seminar)


def _start(seminar: Seminar) -> str:
    # The start time is in the key: a seminar moved after the follow-up was queued gets a new one.
    return f"{seminar.start_at:%Y%m%dT%H%M}"


def queue_follow_up(seminar: Seminar, release: str = "") -> Job:
    """The seminar's follow-up (once per start time; call in a transaction)."""
    return kinds.FOLLOW_UP.enqueue(seminar=seminar, due_at=due_at(seminar), start=_start(seminar), release=release)


def follow_up_queued(seminar: Seminar) -> bool:
    return kinds.FOLLOW_UP.key_for(seminar=seminar, start=_start(seminar), release="") in _known_keys(seminar)


def _known_keys(seminar: Seminar) -> set[str]:
    return set(db.session.scalars(select(Job.key).where(
        Job.kind == kinds.FOLLOW_UP.name, Job.seminar_id == seminar.id, Job.key.is_not(None))))


# What the follow-up queues when it goes: its having gone is that these jobs exist.
SENT_KINDS = (kinds.CERTIFICATE, kinds.FOLLOW_UP_ATTENDED, kinds.FOLLOW_UP_ABSENT, kinds.ATTENDANCE_SUMMARY)


def follow_up_sent(seminar: Seminar) -> bool:
    return db.session.scalar(select(Job.id).where(
        Job.kind.in_([kind.name for kind in SENT_KINDS]), Job.seminar_id == seminar.id).limit(1)) is not None


def schedule_follow_ups(now: datetime | None = None) -> int:
    """Queue the follow-up of every seminar whose time has come (run by the worker each round)."""
    now = now or utcnow()
    seminars = db.session.scalars(select(Seminar).where(
        Seminar.state == SeminarState.PUBLISHED, Seminar.start_at <= now,
        Seminar.start_at > now - LOOK_BACK, Seminar.follow_up_hold.is_(False))).all()
    due = [s for s in seminars if due_at(s) <= now and not follow_up_queued(s)]
    if not due:
        db.session.rollback()
        return 0
    with write_transaction():
        for seminar in due:
            queue_follow_up(seminar)
    return len(due)


def release(seminar_id: int) -> None:
    """The hold is lifted: the follow-up goes now if its time has come (else when it comes)."""
    with write_transaction():
        seminar = db.session.get(Seminar, seminar_id)
        seminar.follow_up_hold = False
        if due_at(seminar) <= utcnow():
            queue_follow_up(seminar, release=f":released:{utcnow():%Y%m%dT%H%M%S}")


def send_recording_mail(seminar_id: int) -> int:
    """"The recording is online" to everyone who had a seat (the recording was added after the
    follow-up went out); once per person and recording address. Returns how many were queued."""
    with write_transaction():
        seminar = db.session.get(Seminar, seminar_id)
        if not seminar.recording_url or seminar.is_cancelled:
            return 0
        recording = hashlib.sha256(seminar.recording_url.encode()).hexdigest()[:12]
        regs = db.session.scalars(select(Registration).where(
            Registration.seminar_id == seminar_id, Registration.status == RegistrationStatus.CONFIRMED)).all()
        for reg in regs:
            kinds.RECORDING_ONLINE.enqueue(registration=reg, recording=recording)
    return len(regs)


def after_correction(registration_id: int) -> str | None:
    """An organiser corrected someone's attendance after the follow-up went out: now attended
    means a certificate and the thank-you mail after all; now absent revokes their certificate
    (its code then answers 404). Returns what was done, if anything."""
    with write_transaction():
        return apply_correction(registration_id)


def apply_correction(registration_id: int) -> str | None:
    """`after_correction` in the caller's write transaction (the portal's, with the correction)."""
    reg = db.session.get(Registration, registration_id)
    seminar = reg.seminar
    certificate = db.session.scalar(select(Certificate).where(Certificate.registration_id == reg.id))
    row = summary_row(seminar, reg.id)
    if row is None:
        return None
    if not row.attended:
        if certificate is not None and certificate.revoked_at is None:
            certificate.revoked_at = utcnow()
            return "certificate revoked"
        return None
    if certificate is not None and certificate.revoked_at is not None:
        certificate.revoked_at = None
        return "certificate restored"
    if certificate is None and follow_up_sent(seminar):
        kinds.CERTIFICATE.enqueue(registration=reg, minutes=row.minutes)
        return "certificate queued"
    return None


def _report_pending(seminar_id: int) -> bool:
    return db.session.scalar(select(Job.id).where(
        Job.kind == kinds.ATTENDANCE.name, Job.seminar_id == seminar_id,
        Job.state.in_(LIVE_STATES)).limit(1)) is not None


def follow_up(job: Job) -> Done | str:
    seminar = job.seminar
    if seminar.is_cancelled or not seminar.is_published:
        return "seminar cancelled: no follow-up"
    if seminar.follow_up_hold:
        return "held: no follow-up until released in the portal"
    if due_at(seminar) > job.due_at + timedelta(minutes=1):
        # Moved after this was queued: the follow-up goes at the new time, under a new key.
        return "seminar moved: follow-up at its new time"
    if _report_pending(seminar.id):
        raise Defer("waiting for the platform's attendance report", REPORT_WAIT)
    result = summary(seminar)
    attended = [(row.registration.id, row.minutes) for row in result.rows if row.attended]
    absent = [row.registration.id for row in result.rows if not row.attended]
    seminar_id = seminar.id
    users = [u.id for u in seminar.hosts if u.active] + list(db.session.scalars(
        select(User.id).where(User.role == "organiser", User.active.is_(True))))

    def apply() -> None:
        seminar = db.session.get(Seminar, seminar_id)
        for reg_id, minutes in attended:
            kinds.CERTIFICATE.enqueue(registration=db.session.get(Registration, reg_id), minutes=minutes)
        for reg_id in absent:
            kinds.FOLLOW_UP_ABSENT.enqueue(registration=db.session.get(Registration, reg_id))
        for user_id in dict.fromkeys(users):
            kinds.ATTENDANCE_SUMMARY.enqueue(seminar=seminar, user_id=user_id)

    log.info("seminar %s: follow-up for %d attendees, %d absentees", seminar_id, len(attended), len(absent))
    return Done(note=f"queued: {len(attended)} attended, {len(absent)} absent", apply=apply)


def build_certificate(job: Job) -> Done | str:
    reg = job.registration
    if reg is None or reg.status != RegistrationStatus.CONFIRMED or reg.seminar.is_cancelled:
        return "no longer applies"
    # Attendance may have been corrected since this was queued: a certificate exists only for
    # attendance at or above the seminar's minimum, with the minutes known now.
    row = summary_row(reg.seminar, reg.id)
    if row is None or not row.attended or row.minutes < reg.seminar.minimum_minutes:
        return "no longer applies: not attended"
    minutes = row.minutes
    reg_id = reg.id

    def apply() -> None:
        reg = db.session.get(Registration, reg_id)
        certificates.issue(reg, minutes)
        kinds.FOLLOW_UP_ATTENDED.enqueue(registration=reg)

    return Done(note="certificate issued", apply=apply)


def run_jobs(jobs: list[Job], recorder) -> None:
    """The batch runner of the follow-up kinds (kinds.py names each one's handler)."""
    def run(job: Job):
        kind = kinds.get(job.kind)
        if kind is None or kind.handler is None:
            raise Fail(f"no handler for job kind {job.kind}")
        return kind.handle()(job)

    recorder.run_each(jobs, run)
