"""Seminar operations, shared by the CLI, the organiser portal and the tests.

Each writes the platform jobs and attendee mails that must follow in its own transaction.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy import Row, bindparam, func, select

from ..database import lock, single_statement, write_transaction
from ..extensions import db
from ..jobs import kinds, outbox
from ..models import (ACTIVE_STATUSES, Job, JobState, Registration, RegistrationStatus, Seminar,
                      SeminarState, User)
from ..notify.digests import schedule_digests
from ..notify.reminders import reminder_keys, schedule_reminders
from ..registration.service import promote_waitlist
from ..timeutil import utcnow


class SeminarError(ValueError):
    """A change that cannot be made; the message says why (shown to organisers)."""


def slugify(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "seminar"


def _unique_slug(title: str, start_at: datetime) -> str:
    base = f"{start_at:%Y-%m-%d}-{slugify(title)}"[:100].rstrip("-")
    slug, n = base, 2
    while db.session.scalar(select(Seminar.id).where(Seminar.slug == slug)) is not None:
        slug, n = f"{base}-{n}", n + 1
    return slug


def host_user(email: str) -> User:
    """The portal account for a host address, created (without password) when new."""
    email = email.strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, role="host")
        db.session.add(user)
    return user


def _check(title: str | None, duration: int | None, capacity: int | None) -> None:
    if title is not None and not title.strip():
        raise SeminarError("title is empty")
    if title is not None and len(title) > 200:
        raise SeminarError("title is longer than 200 characters")
    if duration is not None and not 5 <= duration <= 24 * 60:
        raise SeminarError("duration must be between 5 and 1440 minutes")
    if capacity is not None and not 1 <= capacity <= 100_000:
        raise SeminarError("capacity must be between 1 and 100000")


def create_seminar(*, title: str, start_at: datetime, duration_minutes: int, capacity: int,
                   description: str = "", speakers: str = "", hosts: list[str] = (),
                   publish: bool = False, reminder_hours: str = "24,1",
                   digest_hours: str = "24,1") -> Seminar:
    _check(title, duration_minutes, capacity)
    with write_transaction():
        seminar = Seminar(
            title=title.strip(), slug=_unique_slug(title, start_at), start_at=start_at,
            duration_minutes=duration_minutes, capacity=capacity, description=description,
            speakers=speakers, reminder_hours=reminder_hours, digest_hours=digest_hours,
            state=SeminarState.DRAFT,
        )
        seminar.hosts = [host_user(email) for email in hosts]
        db.session.add(seminar)
        db.session.flush()
        if publish:
            _publish(seminar)
    return seminar


def _publish(seminar: Seminar) -> None:
    if seminar.is_cancelled:
        raise SeminarError("a cancelled seminar cannot be published")
    seminar.state = SeminarState.PUBLISHED
    # The meeting is created by the worker, never inside a web request.
    kinds.CREATE_MEETING.enqueue(seminar=seminar)
    schedule_digests(seminar)


def publish(seminar_id: int) -> Seminar:
    with write_transaction():
        seminar = lock(Seminar, seminar_id)
        if seminar is None:
            raise SeminarError(f"no seminar with id {seminar_id}")
        if not seminar.is_published:
            _publish(seminar)
    return seminar


def update_seminar(seminar_id: int, *, title: str | None = None, start_at: datetime | None = None,
                   duration_minutes: int | None = None, capacity: int | None = None,
                   description: str | None = None, speakers: str | None = None,
                   reminder_hours: str | None = None, digest_hours: str | None = None) -> Seminar:
    """Change a seminar. A new time or title sends every confirmed attendee a calendar update
    (same UID, higher SEQUENCE) and moves their unsent reminders; more seats promote waitlisters."""
    _check(title, duration_minutes, capacity)
    now = utcnow()
    with write_transaction():
        seminar = lock(Seminar, seminar_id)
        if seminar is None:
            raise SeminarError(f"no seminar with id {seminar_id}")
        if seminar.is_cancelled:
            raise SeminarError("a cancelled seminar cannot be changed")
        if capacity is not None and capacity < seminar.confirmed_count:
            raise SeminarError(
                f"capacity {capacity} is below the {seminar.confirmed_count} confirmed seats; "
                "cancel registrations first"
            )
        time_changed = (start_at is not None and start_at != seminar.start_at) or (
            duration_minutes is not None and duration_minutes != seminar.duration_minutes)
        title_changed = title is not None and title.strip() != seminar.title
        reminders_changed = reminder_hours is not None and reminder_hours != seminar.reminder_hours
        digests_changed = digest_hours is not None and digest_hours != seminar.digest_hours
        for field, value in (("title", title and title.strip()), ("start_at", start_at),
                             ("duration_minutes", duration_minutes), ("capacity", capacity),
                             ("description", description), ("speakers", speakers),
                             ("reminder_hours", reminder_hours), ("digest_hours", digest_hours)):
            if value is not None:
                setattr(seminar, field, value)
        if time_changed or title_changed:
            seminar.ical_sequence += 1
            # An update or a mail still waiting to go out is read at send time: it carries this
            # change too.
            if seminar.meeting_id or seminar.is_published:
                kinds.UPDATE_MEETING.enqueue(seminar=seminar)
            confirmed = seminar.attendees()
            outbox.look_up(kinds.SEMINAR_CHANGED.key_for(registration=reg) for reg in confirmed)
            for reg in confirmed:
                kinds.SEMINAR_CHANGED.enqueue(registration=reg, calendar="REQUEST")
        if time_changed or reminders_changed:
            kinds.REMINDER.drop_pending(seminar_id=seminar.id)
            confirmed = seminar.attendees()
            outbox.look_up(reminder_keys(confirmed, now))
            for reg in confirmed:
                schedule_reminders(reg, now)
        if time_changed or digests_changed:
            schedule_digests(seminar, now)
        if seminar.is_published:
            promote_waitlist(seminar, now)
    return seminar


def cancel_seminar(seminar_id: int) -> Seminar:
    """Cancel a seminar: the meeting is deleted at the platform, everyone with a seat gets a
    calendar CANCEL, everyone else on the list a note."""
    with write_transaction():
        seminar = lock(Seminar, seminar_id)
        if seminar is None:
            raise SeminarError(f"no seminar with id {seminar_id}")
        if seminar.is_cancelled:
            return seminar
        seminar.state = SeminarState.CANCELLED
        seminar.ical_sequence += 1
        kinds.REMINDER.drop_pending(seminar_id=seminar.id)
        schedule_digests(seminar)  # a cancelled seminar keeps none
        for reg in seminar.attendees(*ACTIVE_STATUSES):
            if reg.status == RegistrationStatus.CONFIRMED:
                kinds.SEMINAR_CANCELLED.enqueue(registration=reg, calendar="CANCEL")
            elif reg.status == RegistrationStatus.WAITLISTED:
                kinds.SEMINAR_CANCELLED.enqueue(registration=reg)
        kinds.DELETE_MEETING.enqueue(seminar=seminar)
    return seminar


def upcoming(now: datetime | None = None) -> list[Seminar]:
    return list(db.session.scalars(
        select(Seminar)
        .where(Seminar.state == SeminarState.PUBLISHED, Seminar.start_at > (now or utcnow()))
        .order_by(Seminar.start_at)
    ))


def by_slug(slug: str) -> Seminar | None:
    return db.session.scalar(select(Seminar).where(Seminar.slug == slug))


# What a seminar's public sign-up page shows and needs, read on every visit: one statement built
# once, on a connection of its own, giving a plain row (no session, no ORM object: those cost more
# than the rest of the page together).
_seminar, _registration = Seminar.__table__.c, Registration.__table__.c
PAGE_FIELDS = ("id", "slug", "title", "description", "speakers", "start_at", "duration_minutes",
               "capacity", "state", "register_name", "course_number")  # accredited: register number asked
_PAGE_BY_SLUG = select(
    *(_seminar[name] for name in PAGE_FIELDS),
    select(func.count(_registration.id))
    .where(_registration.seminar_id == _seminar.id,
           _registration.status == RegistrationStatus.CONFIRMED)
    .scalar_subquery().label("confirmed"),
).where(_seminar.slug == bindparam("slug"))


def page_by_slug(slug: str) -> Row | None:
    """The seminar's PAGE_FIELDS and its `confirmed` seats (`.id`, `.state`, …), or None: committed
    data, read by one statement on a connection of its own."""
    with single_statement() as connection:
        return connection.execute(_PAGE_BY_SLUG, {"slug": slug}).one_or_none()


def seats_left(page: Row) -> int:
    """`Seminar.seats_left` for a seminar read by `page_by_slug`."""
    return max(0, page.capacity - page.confirmed)


def all_seminars() -> list[Seminar]:
    return list(db.session.scalars(select(Seminar).order_by(Seminar.start_at)))


def failed_jobs(seminar: Seminar) -> list[Job]:
    return list(db.session.scalars(select(Job).where(Job.seminar_id == seminar.id, Job.state == JobState.FAILED)))
