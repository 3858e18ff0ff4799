"""Privacy by default (AVG): personal data is removed when it is no longer needed.

- Retention: `RETENTION_DAYS` (default 183, six months) after a seminar ended, the personal data of
  everyone registered for it is removed; anonymous counts (status, type of location, timestamps)
  stay for the organisers' figures.
- Lapsed sign-ups (never confirmed) are removed at the next purge.
- Certificates of attendance keep their own record (name, organisation, seminar, date, minutes,
  code, register number) `CERTIFICATE_RETENTION_DAYS` (default 730) after the seminar: registers
  check proof long after the course. Then only the code stays, so the verification page can say
  the certificate expired from our records.
- On request, one person's data is exported or erased at once, their interest-list entry included.
- The interest list has a clock of its own (reach/retention.py: INTEREST_RETENTION_DAYS), run with
  every purge.
The video platform is asked to remove registrants too, and every purge writes a PurgeLog row
(what, when, how many; no personal data).
"""
from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from .database import write_transaction
from .extensions import db
from .attendance import certificates
from .attendance.models import AttendanceCorrection
from .jobs import kinds
from .models import (ACTIVE_STATUSES, LIVE_STATES, AttendanceEvent, Job, JobState, PurgeLog, Registration,
                     RegistrationStatus, Seminar)
from .reach import retention as interest_retention
from .reach import service as interest_list
from .registration.service import cancel, normalize_email
from .timeutil import utcnow


@dataclass
class PurgeReport:
    # (reason, seminar_id) -> registration ids
    groups: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    # Certificates past CERTIFICATE_RETENTION_DAYS (their own, longer clock): how many.
    certificates: int = 0
    interest: "interest_retention.ListReport | None" = None

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.groups.values())

    def lines(self) -> list[str]:
        return [f"{reason}: seminar {seminar_id}: {len(ids)} registrations"
                for (reason, seminar_id), ids in sorted(self.groups.items())] + (
            [f"certificate-retention: {self.certificates} certificates"] if self.certificates else [])

    def interest_lines(self, dry_run: bool) -> list[str]:
        return self.interest.lines(dry_run) if self.interest else []


def _due(now: datetime) -> PurgeReport:
    retention = timedelta(days=current_app.config["RETENTION_DAYS"])
    report = PurgeReport()
    rows = db.session.execute(
        select(Registration.id, Registration.seminar_id, Registration.status, Seminar.start_at,
               Seminar.duration_minutes)
        .join(Seminar, Seminar.id == Registration.seminar_id)
        .where(Registration.status != RegistrationStatus.PURGED)
    )
    for reg_id, seminar_id, status, start_at, minutes in rows:
        ended = start_at + timedelta(minutes=minutes)
        if ended + retention <= now:
            reason = "retention"
        elif status == RegistrationStatus.LAPSED:
            reason = "lapsed"
        else:
            continue
        report.groups.setdefault((reason, seminar_id), []).append(reg_id)
    return report


def purge(now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """Remove personal data that is past its time. With dry_run, only report what would go."""
    now = now or utcnow()
    interest = interest_retention.run(now, dry_run=dry_run)
    report = _due(now)
    report.certificates = certificates.expiring(now)
    report.interest = interest
    if dry_run or not (report.total or report.certificates):
        db.session.rollback()
        return report
    for (reason, seminar_id), ids in report.groups.items():
        _erase(ids, reason, seminar_id)
    if report.certificates:
        # Certificates keep their own copy of name, seminar, date, minutes and register number
        # for CERTIFICATE_RETENTION_DAYS; after that only the code stays ("expired").
        with write_transaction():
            count = certificates.expire_due(now)
            db.session.add(PurgeLog(reason="cert-retention", registrations=0, certificates=count))
    return report


def _mail_text(message: str) -> str:
    """A stored mail (as sent: headers, quoted-printable bodies) as the text a reader sees."""
    msg = email.message_from_string(message, policy=email.policy.default)
    parts = [msg.get("To", "")]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            try:
                parts.append(part.get_content())
            except (LookupError, ValueError):  # an odd charset: the raw text still counts
                parts.append(part.get_payload())
    return "\n".join(parts)


def copies_naming(regs: list[Registration]) -> list[Job]:
    """Stored mails to someone else that name one of `regs`: the host digests (attendee lists)
    of their seminars. Their own mails are found by registration id."""
    seminars = {reg.seminar_id for reg in regs}
    if not seminars:
        return []
    candidates = db.session.scalars(
        select(Job).where(Job.seminar_id.in_(seminars), Job.registration_id.is_(None),
                          Job.kind.like("mail.%"), Job.message.is_not(None)))
    found = []
    for job in candidates:
        text = _mail_text(job.message)
        if any((reg.name and reg.name in text) or (reg.email and reg.email in text)
               for reg in regs if reg.seminar_id == job.seminar_id):
            found.append(job)
    return found


def _erase(ids: list[int], reason: str, seminar_id: int | None) -> None:
    with write_transaction():
        removals = 0
        regs = list(db.session.scalars(select(Registration).where(Registration.id.in_(ids))))
        # Copies of sent mails that name them (a host's attendee list) go with their data.
        copies = copies_naming(regs)
        for job in copies:
            job.message = None
        for reg in regs:
            if reg.platform_registrant_id:
                # The platform call needs only the registrant id, which is not personal data.
                kinds.REMOVE_ATTENDEE.enqueue(registration=reg)
                removals += 1
            reg.name = reg.email = reg.organisation = reg.question = ""
            reg.function = reg.register_number = ""
            reg.email_normalized = f"purged-{reg.id}"
            reg.join_url = None
            reg.status = RegistrationStatus.PURGED
        # Queued mail to them is dropped; sent mail and error texts (which quote addresses) go.
        dropped = db.session.execute(
            update(Job).where(Job.registration_id.in_(ids), Job.kind.like("mail.%"),
                              Job.state.in_(LIVE_STATES))
            .values(state=JobState.DONE, last_error="not sent: personal data purged")
            .execution_options(synchronize_session=False)
        ).rowcount or 0
        cleared = db.session.execute(
            update(Job).where(Job.registration_id.in_(ids), Job.message.is_not(None))
            .values(message=None, recipient=None)
            .execution_options(synchronize_session=False)
        ).rowcount or 0
        db.session.execute(
            update(Job).where(Job.registration_id.in_(ids), Job.kind.like("mail.%"))
            .values(last_error=None, recipient=None)
            .execution_options(synchronize_session=False)
        )
        # What the platforms told about them: names of unmatched guests, organisers' reasons.
        db.session.execute(
            update(AttendanceCorrection).where(AttendanceCorrection.registration_id.in_(ids))
            .values(reason="").execution_options(synchronize_session=False))
        if seminar_id is not None and reason == "retention":
            db.session.execute(
                update(AttendanceEvent).where(AttendanceEvent.seminar_id == seminar_id,
                                              AttendanceEvent.guest.is_not(None))
                .values(guest=None).execution_options(synchronize_session=False))
        erased = 0
        if reason == "request":
            # Erased on request: the certificate too (it would otherwise outlive the person's wish).
            erased = certificates.expire_for(ids)
        db.session.add(PurgeLog(reason=reason, seminar_id=seminar_id, registrations=len(ids),
                                messages=cleared + dropped + len(copies), platform_removals=removals,
                                certificates=erased))


def registrations_of(email: str) -> list[Registration]:
    return list(db.session.scalars(
        select(Registration).where(Registration.email_normalized == normalize_email(email))
        .order_by(Registration.id)
    ))


def export_person(email: str) -> dict:
    """Everything stored about one address (a data subject access request)."""
    regs = registrations_of(email)
    out = []
    for reg in regs:
        mails = db.session.scalars(
            select(Job).where(Job.registration_id == reg.id, Job.kind.like("mail.%"), Job.state == JobState.DONE)
            .order_by(Job.id)
        )
        out.append({
            "seminar": reg.seminar.title,
            "seminar_start": reg.seminar.start_at.isoformat(),
            "name": reg.name, "email": reg.email, "organisation": reg.organisation,
            "function": reg.function, "register_number": reg.register_number,
            "location_type": reg.location_type, "question": reg.question, "language": reg.language,
            "status": reg.status, "consent_at": reg.consent_at.isoformat(),
            "signed_up_at": reg.created_at.isoformat(),
            "confirmed_at": reg.confirmed_at.isoformat() if reg.confirmed_at else None,
            "cancelled_at": reg.cancelled_at.isoformat() if reg.cancelled_at else None,
            "mails": [{"kind": j.kind.removeprefix("mail."), "sent_at": j.done_at.isoformat() if j.done_at else None}
                      for j in mails if j.message],
            # Mails to others that name them (host attendee lists), kept for the outbox view.
            "named_in": [{"kind": j.kind.removeprefix("mail."), "to": "host",
                          "sent_at": j.done_at.isoformat() if j.done_at else None}
                         for j in copies_naming([reg])],
        })
    return {"email": normalize_email(email), "registrations": out,
            "interest_list": interest_list.export(email)}


def erase_person(email: str) -> int:
    """Erase one address now: active registrations are cancelled first (their seat goes to the
    waitlist and they get the cancellation), then everything personal is removed."""
    regs = registrations_of(email)
    for reg in regs:
        if reg.status in ACTIVE_STATUSES:
            cancel(reg.id)
    ids = [reg.id for reg in regs if reg.status != RegistrationStatus.PURGED]
    if ids:
        _erase(ids, "request", None)
    interest_list.erase(email)
    return len(ids)


def purge_if_due(now: datetime | None = None) -> None:
    """Run from the worker: a purge at most once a day, so retention needs no cron job."""
    now = now or utcnow()
    last = db.session.scalar(select(func.max(PurgeLog.at)).where(PurgeLog.reason == "scheduled-run"))
    if last is not None and last > now - timedelta(days=1):
        return
    purge(now)
    with write_transaction():
        db.session.add(PurgeLog(reason="scheduled-run", registrations=0))
