"""Portal-only operations: attendee lists, hosts, waitlist moves and the outbox.

Seminar changes go through `programme.service` and seat changes through `registration.service`;
what is here is what only the portal needs.
"""
from __future__ import annotations

import email
import email.policy
from collections import Counter
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..database import lock, write_transaction
from ..extensions import db
from ..jobs import kinds
from ..models import Job, JobState, Registration, RegistrationStatus, Seminar, User
from ..notify.mails import compose
from ..programme.service import host_user
from ..registration.service import give_seat, locked_registration
from ..timeutil import utcnow
from ..notify.digests import schedule_digests

STATUS_ORDER = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED, RegistrationStatus.PENDING,
                RegistrationStatus.CANCELLED, RegistrationStatus.LAPSED)
SORTS = {
    "name": Registration.name,
    "email": Registration.email_normalized,
    "organisation": Registration.organisation,
    "status": Registration.status,
    "signed_up": Registration.created_at,
    "confirmed": Registration.confirmed_at,
}


class PortalError(ValueError):
    """A portal action that cannot be done; the message is shown as it is (already translated)."""


# ---------------------------------------------------------------- attendee lists

def status_counts(seminar: Seminar) -> dict[str, int]:
    rows = db.session.execute(
        select(Registration.status, func.count(Registration.id))
        .where(Registration.seminar_id == seminar.id).group_by(Registration.status)
    )
    counts = Counter(dict(rows.all()))
    return {status: counts.get(status, 0) for status in STATUS_ORDER}


def _search(stmt, query: str):
    query = query.strip()
    if not query:
        return stmt
    # Escape LIKE wildcards: a search for "50%" means those characters, not "anything".
    needle = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return stmt.where(or_(
        func.lower(Registration.name).like(needle, escape="\\"),
        Registration.email_normalized.like(needle, escape="\\"),
        func.lower(Registration.organisation).like(needle, escape="\\"),
    ))


def attendee_list(seminar: Seminar, query: str = "", status: str = "", sort: str = "name",
                  descending: bool = False) -> list[Registration]:
    stmt = select(Registration).where(Registration.seminar_id == seminar.id,
                                      Registration.status != RegistrationStatus.PURGED)
    if status in STATUS_ORDER:
        stmt = stmt.where(Registration.status == status)
    column = SORTS.get(sort, Registration.name)
    order = column.desc() if descending else column.asc()
    # NULLs (e.g. never confirmed) last either way, the same on SQLite and PostgreSQL.
    stmt = _search(stmt, query).order_by(column.is_(None), order, Registration.id)
    return list(db.session.scalars(stmt))


def search_registrations(query: str, limit: int = 200) -> list[Registration]:
    """Organisers: registrations in any seminar by name, address or organisation."""
    if not query.strip():
        return []
    stmt = (select(Registration).join(Seminar).where(Registration.status != RegistrationStatus.PURGED)
            .order_by(Seminar.start_at.desc(), Registration.name).limit(limit))
    return list(db.session.scalars(_search(stmt, query)))


# ---------------------------------------------------------------- hosts

def set_hosts(seminar_id: int, emails: list[str]) -> Seminar:
    """Replace the seminar's hosts (accounts are created for new addresses) and rewrite the
    digests, so a new host gets the lists and a removed one no longer does."""
    with write_transaction():
        seminar = lock(Seminar, seminar_id)
        wanted = list(dict.fromkeys(e.strip().lower() for e in emails if e.strip()))
        if [u.email for u in seminar.hosts] != wanted:
            seminar.hosts = [host_user(address) for address in wanted]
            schedule_digests(seminar)
    return seminar


def save_user(user: User | None, *, email: str, name: str, role: str, active: bool) -> User:
    with write_transaction():
        holder = db.session.scalar(select(User).where(User.email == email))
        if holder is not None and (user is None or holder.id != user.id):
            raise PortalError(_("There already is an account with this e-mail address."))
        if user is None:
            user = User(email=email)
            db.session.add(user)
        user.email, user.name, user.role, user.active = email, name, role, active
        db.session.flush()
        for seminar in user.hosted:  # an account switched off gets no more digests
            schedule_digests(seminar)
    return user


def users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.role.desc(), User.email)))


# ---------------------------------------------------------------- waitlist moves

def give_seat_to(registration_id: int) -> tuple[Registration, bool]:
    """Take one person off the waitlist and give them a seat now, out of turn. When the seminar
    is full it gets one seat more. Returns (registration, capacity was raised)."""
    now = utcnow()
    with locked_registration(registration_id) as (reg, seminar):
        if reg.status != RegistrationStatus.WAITLISTED:
            raise PortalError(_("This person is not on the waitlist (any more)."))
        if not seminar.is_published or seminar.has_started(now):
            raise PortalError(_("This seminar is not open for sign-up."))
        raised = seminar.confirmed_count >= seminar.capacity
        if raised:
            seminar.capacity += 1
        give_seat(reg, now, mail=kinds.PROMOTED)
    return reg, raised


# ---------------------------------------------------------------- outbox

@dataclass
class Rendered:
    """A mail as the recipient sees (or will see) it."""
    subject: str
    to: str
    text: str
    html: str | None
    attachments: list[str]
    sent: bool


def job_recipient(job: Job) -> str:
    if job.recipient:
        return job.recipient
    if job.registration is not None:
        return job.registration.email
    user_id = (job.payload or {}).get("user_id")
    user = db.session.get(User, user_id) if user_id is not None else None
    return user.email if user else ""


def render_job(job: Job) -> Rendered | None:
    """The message as sent (Job.message), else as it would be composed now; None when it will
    not be sent (no longer applies) or was not kept (it held a sign-in link)."""
    if not job.kind.startswith("mail."):
        return None
    if job.message:
        msg = email.message_from_string(job.message, policy=email.policy.default)
        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
        files = [part.get_filename() for part in msg.iter_attachments() if part.get_filename()]
        return Rendered(subject=str(msg["Subject"]), to=str(msg["To"]),
                        text=text_part.get_content() if text_part else "",
                        html=html_part.get_content() if html_part else None,
                        attachments=files, sent=True)
    if job.state == JobState.DONE:
        return None
    composed = compose(job)
    if composed is None or composed.confidential:
        return None
    text, html = composed.rendered
    name, address = composed.to
    return Rendered(subject=composed.subject, to=f"{name} <{address}>" if name else address,
                    text=text, html=html, sent=False,
                    attachments=["uitnodiging.ics"] if composed.invite else [])


def _pending_under_key(job: Job) -> Job | None:
    if job.key is None or job.state == JobState.PENDING:
        return None
    return db.session.scalar(select(Job).where(Job.key == job.key, Job.state == JobState.PENDING,
                                               Job.id != job.id))


def resend(job_id: int) -> Job:
    """Failed or waiting work runs again now; a mail that went out is queued once more as a new
    job (composed afresh from current data, so it is not sent when it no longer applies)."""
    with write_transaction():
        job = db.session.get(Job, job_id)
        if job.state in (JobState.FAILED, JobState.PENDING):
            waiting = _pending_under_key(job)
            if waiting is not None:
                return waiting  # the same intent already waits (only one pending job per key)
            job.state, job.due_at, job.attempts, job.last_error = JobState.PENDING, utcnow(), 0, None
            return job
        if job.state == JobState.DONE and job.kind.startswith("mail."):
            copy = Job(kind=job.kind, seminar_id=job.seminar_id, registration_id=job.registration_id,
                       payload=dict(job.payload or {}, resent_from=job.id), due_at=utcnow(),
                       state=JobState.PENDING)
            db.session.add(copy)
            db.session.flush()
            return copy
    raise PortalError(_("This job cannot be sent again now."))


def outbox(state: str = "", family: str = "", seminar_id: int | None = None,
           limit: int = 200) -> list[Job]:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if state in {s.value for s in JobState}:
        stmt = stmt.where(Job.state == state)
    if family in ("mail", "video"):
        stmt = stmt.where(Job.kind.like(f"{family}.%"))
    if seminar_id:
        stmt = stmt.where(Job.seminar_id == seminar_id)
    return list(db.session.scalars(stmt))


def failed_count() -> int:
    return db.session.scalar(select(func.count(Job.id)).where(Job.state == JobState.FAILED)) or 0


def seminars_with_platform_errors() -> list[Seminar]:
    return list(db.session.scalars(select(Seminar).where(Seminar.platform_error.is_not(None))
                                   .order_by(Seminar.start_at)))


def video_provider(seminar: Seminar) -> str:
    return (seminar.video_provider or current_app.config["VIDEO_PROVIDER"]).lower()


def host_link(seminar: Seminar) -> str | None:
    """Where a host goes to start the seminar's meeting, fresh from the platform where links
    expire. Raises PlatformError when the platform cannot say now."""
    from ..video import get_provider

    if not seminar.meeting_id and not seminar.meeting_host_url:
        return None
    provider = get_provider(video_provider(seminar))
    try:
        return provider.host_link(seminar)
    finally:
        provider.close()
