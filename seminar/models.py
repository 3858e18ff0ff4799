"""The data model: seminars, registrations, portal users and the one table of work (jobs)."""
from __future__ import annotations

import enum
import secrets
import uuid
from datetime import datetime, timedelta

from flask_login import UserMixin
from sqlalchemy import DDL, JSON, Enum, ForeignKey, Index, String, Text, event, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db
from .timeutil import UTCDateTime, utcnow


# Status columns hold one of their enum's values, checked by the database (a CHECK constraint on
# SQLite and PostgreSQL alike). Members are strings too, so compare with the member itself:
# `reg.status == RegistrationStatus.CONFIRMED` (never a bare "confirmed", never `.value`).

class SeminarState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class RegistrationStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"
    PURGED = "purged"


class JobState(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class Lane(enum.StrEnum):
    """Which work a worker takes first: what a person is waiting for (a confirmation link, a seat
    mail) goes before work for many (calendar updates, reminders, digests)."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


def status_column(enum_class: type[enum.StrEnum], name: str, length: int) -> Enum:
    """A string column that holds one of `enum_class`'s values, with a CHECK constraint."""
    return Enum(enum_class, name=name, native_enum=False, create_constraint=True, length=length,
                values_callable=lambda members: [member.value for member in members],
                validate_strings=True)


# A registration in one of these holds (or waits for) a place: at most one per seminar and address.
ACTIVE_STATUSES = (RegistrationStatus.PENDING, RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)
# Jobs in these are still to run: an intent's key is unique among them.
LIVE_STATES = (JobState.PENDING, JobState.CLAIMED)


seminar_hosts = db.Table(
    "seminar_host",
    db.Column("seminar_id", ForeignKey("seminar.id", ondelete="CASCADE"), primary_key=True),
    db.Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
)


def _room_name() -> str:
    return "bmk-" + secrets.token_urlsafe(18).replace("_", "x").replace("-", "y").lower()


class Seminar(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    speakers: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int]
    capacity: Mapped[int]
    state: Mapped[SeminarState] = mapped_column(status_column(SeminarState, "state", 16),
                                                default=SeminarState.DRAFT)
    # Reminder and host-digest offsets, hours before the start, comma separated ("24,1").
    reminder_hours: Mapped[str] = mapped_column(String(40), default="24,1")
    digest_hours: Mapped[str] = mapped_column(String(40), default="24,1")
    # The meeting at the video platform; filled in by the worker once the platform answered.
    video_provider: Mapped[str | None] = mapped_column(String(16))
    room_name: Mapped[str] = mapped_column(String(64), default=_room_name)
    meeting_id: Mapped[str | None] = mapped_column(String(64))
    meeting_join_url: Mapped[str | None] = mapped_column(Text)
    meeting_host_url: Mapped[str | None] = mapped_column(Text)
    # Last platform problem, shown to organisers until the next success.
    platform_error: Mapped[str | None] = mapped_column(Text)
    # Public .ics (PUBLISH) SEQUENCE; raised when time or title changes.
    ical_sequence: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The platform's own meeting id when it is longer than meeting_id holds (Microsoft Graph ids
    # run to ~150 characters); meeting_id then carries a short digest of it.
    meeting_ref: Mapped[str | None] = mapped_column(Text)
    # After the seminar (issue 12): links for the follow-up, accreditation, who counts as attended.
    slides_url: Mapped[str | None] = mapped_column(Text)
    recording_url: Mapped[str | None] = mapped_column(Text)
    evaluation_url: Mapped[str | None] = mapped_column(Text)  # an external survey instead of ours
    register_name: Mapped[str | None] = mapped_column(String(120))
    course_number: Mapped[str | None] = mapped_column(String(60))
    points: Mapped[str | None] = mapped_column(String(20))
    min_attendance_percent: Mapped[int] = mapped_column(default=75)
    # None: FOLLOW_UP_DELAY_MINUTES. The hold keeps the follow-up from going until released.
    follow_up_delay_minutes: Mapped[int | None] = mapped_column()
    follow_up_hold: Mapped[bool] = mapped_column(default=False)

    hosts: Mapped[list["User"]] = relationship(secondary=seminar_hosts, back_populates="hosted")
    registrations: Mapped[list["Registration"]] = relationship(
        back_populates="seminar", order_by="Registration.id"
    )

    @property
    def end_at(self) -> datetime:
        return self.start_at + timedelta(minutes=self.duration_minutes)

    @property
    def is_accredited(self) -> bool:
        return bool(self.register_name and self.course_number)

    @property
    def minimum_minutes(self) -> int:
        """Attendance at or above this many minutes counts as attended."""
        return -(-self.duration_minutes * self.min_attendance_percent // 100)

    @property
    def is_published(self) -> bool:
        return self.state == SeminarState.PUBLISHED

    @property
    def is_cancelled(self) -> bool:
        return self.state == SeminarState.CANCELLED

    def has_started(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.start_at

    def accepts_sign_ups(self, now: datetime | None = None) -> bool:
        return self.is_published and not self.has_started(now)

    def count(self, status: RegistrationStatus) -> int:
        return db.session.scalar(
            select(func.count(Registration.id)).where(
                Registration.seminar_id == self.id, Registration.status == status
            )
        ) or 0

    @property
    def confirmed_count(self) -> int:
        return self.count(RegistrationStatus.CONFIRMED)

    @property
    def waitlist_count(self) -> int:
        return self.count(RegistrationStatus.WAITLISTED)

    def attendees(self, *statuses: RegistrationStatus) -> list["Registration"]:
        """Its registrations in `statuses` (default: confirmed), in the order they were made."""
        statuses = statuses or (RegistrationStatus.CONFIRMED,)
        return list(db.session.scalars(
            select(Registration)
            .where(Registration.seminar_id == self.id, Registration.status.in_(statuses))
            .order_by(Registration.id)
        ))

    @property
    def seats_left(self) -> int:
        return max(0, self.capacity - self.confirmed_count)

    @staticmethod
    def hours_list(text: str) -> list[int]:
        return sorted({int(h) for h in text.split(",") if h.strip()}, reverse=True)


class Registration(db.Model):
    __table_args__ = (
        # At most one active registration per seminar and address, enforced by the database.
        Index(
            "uq_registration_active_email",
            "seminar_id",
            "email_normalized",
            unique=True,
            sqlite_where=db.text("status IN ('pending', 'confirmed', 'waitlisted')"),
            postgresql_where=db.text("status IN ('pending', 'confirmed', 'waitlisted')"),
        ),
        Index("ix_registration_seminar_status", "seminar_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id"))
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254))
    organisation: Mapped[str] = mapped_column(String(200))
    location_type: Mapped[str] = mapped_column(String(40))
    question: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(5), default="nl")
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[RegistrationStatus] = mapped_column(status_column(RegistrationStatus, "status", 16),
                                                       default=RegistrationStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The latest sign-up with this address: a pending registration lapses counting from here.
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How many confirmation links were sent: each sign-up again re-sends one (a new outbox intent).
    confirm_mails: Mapped[int] = mapped_column(default=0)
    # One calendar UID for the registration's whole life. ical_sequence counts the invites queued:
    # the next invite carries it as SEQUENCE, so SEQUENCE rises with every invite sent.
    ical_uid: Mapped[str] = mapped_column(String(80), default=lambda: f"{uuid.uuid4()}")
    ical_sequence: Mapped[int] = mapped_column(default=0)
    # The attendee at the video platform.
    platform_registrant_id: Mapped[str | None] = mapped_column(String(120))
    join_url: Mapped[str | None] = mapped_column(Text)
    # Asked on the sign-up form: the person's function, and their register number (accredited
    # seminars only) for the accreditation export and the certificate.
    function: Mapped[str] = mapped_column(String(120), default="")
    register_number: Mapped[str] = mapped_column(String(30), default="")
    # The evaluation was answered (the answer itself is stored without any link to the person).
    evaluated: Mapped[bool] = mapped_column(default=False)

    seminar: Mapped[Seminar] = relationship(back_populates="registrations")

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def holds_seat(self) -> bool:
        return self.status == RegistrationStatus.CONFIRMED


class User(UserMixin, db.Model):
    """A portal account: an organiser (everything) or a host (only their own seminars)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(16), default="host")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Raised by logging out and by a password change: a session cookie carrying an older value
    # (copied before) no longer opens anything.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    hosted: Mapped[list[Seminar]] = relationship(secondary=seminar_hosts, back_populates="hosts")

    @property
    def is_organiser(self) -> bool:
        return self.role == "organiser"


class Job(db.Model):
    """One unit of durable work: a mail to send or a call to a video platform.

    Written in the same transaction as the change that causes it; the worker claims due rows
    with a lease, so work claimed by a worker that died is taken again once the lease runs out.
    `key` names the intent (e.g. `seat-mail:12`): unique among pending jobs, so the same intent
    is never waiting twice; one queued while its job runs waits under the key (seminar/jobs/kinds.py).
    """

    __table_args__ = (
        Index("ix_job_state_due", "state", "due_at"),
        Index("uq_job_pending_key", "key", unique=True,
              sqlite_where=db.text("state = 'pending'"),
              postgresql_where=db.text("state = 'pending'")),
        Index("ix_job_key", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(160))
    seminar_id: Mapped[int | None] = mapped_column(ForeignKey("seminar.id"), index=True)
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id"), index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    state: Mapped[JobState] = mapped_column(status_column(JobState, "state", 10), default=JobState.PENDING)
    lane: Mapped[Lane] = mapped_column(status_column(Lane, "lane", 12), default=Lane.BULK)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # For mail: who it went to and the message as sent (purged with the person's data).
    recipient: Mapped[str | None] = mapped_column(String(254))
    message: Mapped[str | None] = mapped_column(Text)

    seminar: Mapped[Seminar | None] = relationship()
    registration: Mapped[Registration | None] = relationship()


class PlatformToken(db.Model):
    """A video platform's OAuth access token, shared by every web and worker process.

    One row per platform. The process that finds it missing or about to expire refreshes it with
    the row locked, so one process at a time asks the platform for a new token.
    """

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AttendanceEvent(db.Model):
    """Someone joined or left a seminar's meeting, as the platform reported it (webhook or report).

    Holds nothing personal itself: who it was is known only through the registration, so purging
    a registration's personal data leaves counts without names.
    """

    __table_args__ = (Index("ix_attendance_event_seminar_at", "seminar_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id", ondelete="CASCADE"))
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration.id", ondelete="SET NULL"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # joined / left
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The platform's opaque participant id (pairs a join with its leave).
    participant_id: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(16), default="webhook")  # webhook / report / teams / csv / jitsi
    # For a participant that matched none of our registrations only: what the platform called them
    # (name or address), so organisers see who it was. Removed with the seminar's personal data.
    guest: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    seminar: Mapped[Seminar] = relationship()
    registration: Mapped[Registration | None] = relationship()


class PurgeLog(db.Model):
    """What the privacy purge removed, when and why: counts only, never personal data."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(20))  # retention | lapsed | request | scheduled-run | cert-retention | interest
    seminar_id: Mapped[int | None] = mapped_column(ForeignKey("seminar.id"))
    registrations: Mapped[int] = mapped_column(default=0)
    messages: Mapped[int] = mapped_column(default=0)
    platform_removals: Mapped[int] = mapped_column(default=0)
    certificates: Mapped[int] = mapped_column(default=0)  # certificate records emptied
    # Interest-list addresses removed (no answer to "still interested?", unconfirmed, on request).
    subscribers: Mapped[int] = mapped_column(default=0)


class MailRelayState(db.Model):
    """The mail relay's pace and health as every worker sees it (notify/relay/control.py): one
    row, changed only with the row locked. Used when RATELIMIT_STORAGE_URI is not Redis."""

    __tablename__ = "mail_relay_state"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    # The next free start (epoch seconds), apart from `state`: one UPDATE moves it on per message.
    tat: Mapped[float] = mapped_column(db.Float, default=0.0)


class MailRelayCount(db.Model):
    """Messages started in one bucket of one quota window (e.g. 30/60: one bucket per 2.5 s)."""

    __tablename__ = "mail_relay_count"

    limit_key: Mapped[str] = mapped_column(String(40), primary_key=True)  # e.g. "30/60"
    bucket: Mapped[int] = mapped_column(db.BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)


class MailRelaySlot(db.Model):
    """One connection to the relay that a worker may hold; a lease, taken again once it expires
    (a worker that died gives its connections back by itself)."""

    __tablename__ = "mail_relay_slot"

    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[float | None] = mapped_column(db.Float)


class RateLimitCounter(db.Model):
    """One Flask-Limiter counter (seminar/ratelimits.py), shared by every process that uses this
    database. The key is a digest: the limiter's keys hold client and e-mail addresses."""

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[float] = mapped_column(index=True)  # seconds since the epoch


# Counters need no crash safety: on PostgreSQL the table is UNLOGGED (no WAL flush per hit; after
# a crash it starts empty). The migration does the same.
event.listen(RateLimitCounter.__table__, "after_create",
             DDL("ALTER TABLE %(table)s SET UNLOGGED").execute_if(dialect="postgresql"))
