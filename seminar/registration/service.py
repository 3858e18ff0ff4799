"""Registration operations, shared by the views, the CLI, the portal and the tests.

Every operation that changes seats runs in `write_transaction()` with the seminar locked, and
writes the mails and platform jobs that must follow in that same transaction.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from flask import current_app
from sqlalchemy import Row, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from ..database import lock, write_connection, write_transaction
from ..extensions import db
from ..jobs import kinds
from ..models import ACTIVE_STATUSES, Registration, RegistrationStatus, Seminar, SeminarState
from ..notify.reminders import schedule_reminders
from ..timeutil import utcnow


class RegistrationClosed(Exception):
    """Sign-up or confirmation is not possible (any more) for this seminar.

    `reason` is one of: draft, cancelled, started.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class SignUpData:
    name: str
    email: str
    organisation: str
    location_type: str
    question: str = ""
    language: str = "nl"
    function: str = ""
    register_number: str = ""

    def columns(self, normalized: str, now: datetime) -> dict:
        """A new registration's columns: what was typed (trimmed), signed up and consented now."""
        return dict(name=self.name.strip(), email=self.email.strip(), email_normalized=normalized,
                    organisation=self.organisation.strip(), location_type=self.location_type,
                    question=self.question.strip(), function=self.function.strip(),
                    register_number=self.register_number.strip(), language=self.language,
                    consent_at=now, signed_up_at=now)


def normalize_email(address: str) -> str:
    return address.strip().lower()


def closed_reason(seminar: Seminar | Row, now: datetime | None = None) -> str | None:
    """Why signing up is not possible (None: it is). `seminar`: a Seminar, or a row with its
    `state` and `start_at` (the public page reads one)."""
    return _closed_reason(seminar.state, seminar.start_at, now)


def _closed_reason(state: SeminarState, start_at: datetime, now: datetime | None = None) -> str | None:
    if state == SeminarState.CANCELLED:
        return "cancelled"
    if state != SeminarState.PUBLISHED:
        return "draft"
    if (now or utcnow()) >= start_at:
        return "started"
    return None


class NoSuchSeminar(LookupError):
    """No seminar with that id or address."""


def sign_up(seminar_id: int, data: SignUpData) -> Registration:
    """Store a pending registration and queue the confirmation mail.

    Signing up again with an address that already has an active registration re-sends the
    confirmation link (still pending) or a note with the manage link (already confirmed or
    waitlisted). The caller shows the same page either way, so the page never reveals whether
    an address was registered.
    """
    reg_id = _sign_up_retried(_LOCK_SEMINAR, {"seminar_id": seminar_id}, data)
    return db.session.get(Registration, reg_id)


def sign_up_at(slug: str, data: SignUpData) -> int:
    """`sign_up` for the seminar whose page is at `slug`: the public form's POST, which finds the
    seminar in the sign-up's own transaction instead of reading it first in another. Returns the
    registration's id (the page needs nothing more)."""
    return _sign_up_retried(_LOCK_SEMINAR_AT, {"slug": slug}, data)


def _sign_up_retried(find_seminar, params: dict, data: SignUpData) -> int:
    for attempt in (1, 2):
        try:
            return _sign_up(find_seminar, params, data)
        except IntegrityError:
            # The same address signed up at the same moment in another request, and that one
            # stored its registration first (the unique index on active registrations said no):
            # once more, now finding it, as if the two had come one after the other.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sign_up(find_seminar, params: dict, data: SignUpData) -> int:
    now = utcnow()
    normalized = normalize_email(data.email)
    reg_id = _sign_up_new(find_seminar, params, data, normalized, now)
    if reg_id is None:
        # The address already has an active registration here: the rarer way, through the ORM.
        reg_id = _sign_up_again(find_seminar, params, data, normalized, now)
    return reg_id


def _find_open(connection, find_seminar, params: dict, normalized: str, now: datetime) -> Row:
    """The seminar (its id, and `active_id`: this address's active registration there, if any),
    read with the shared lock of `_LOCK_SEMINAR`; NoSuchSeminar or RegistrationClosed otherwise.

    A sign-up changes no seats, so sign-ups need not wait for each other: a shared lock on the
    seminar (PostgreSQL's FOR KEY SHARE, what inserting a registration takes anyway) still makes
    them wait for, and be waited for by, anything that changes the seminar (cancel, publish,
    update, a confirmation: all lock it FOR UPDATE). SQLite's IMMEDIATE transaction serialises
    every writer regardless."""
    seminar = connection.execute(find_seminar, dict(params, email=normalized)).one_or_none()
    if seminar is None:
        raise NoSuchSeminar()
    reason = _closed_reason(seminar.state, seminar.start_at, now)
    if reason:
        raise RegistrationClosed(reason)
    return seminar


def _insert_new(connection, seminar_id: int, data: SignUpData, normalized: str, now: datetime) -> int:
    """Two plain INSERTs (the registration and its confirmation mail) instead of the ORM's unit of
    work. The unique index on active registrations still decides between two sign-ups of one
    address at once. (The columns' defaults, e.g. the calendar UID, apply as they do for the ORM.)"""
    reg_id = connection.execute(_INSERT_REGISTRATION, dict(
        data.columns(normalized, now), seminar_id=seminar_id, status=RegistrationStatus.PENDING, confirm_mails=1,
    )).inserted_primary_key[0]
    # A registration made just now has no work queued yet: no need to look for the key.
    kinds.CONFIRM_ADDRESS.enqueue_new(seminar_id=seminar_id, registration_id=reg_id, connection=connection)
    return reg_id


def _sign_up_new(find_seminar, params: dict, data: SignUpData, normalized: str, now: datetime) -> int | None:
    """The common case, once per sign-up: an address new to the seminar, in one transaction of
    three statements on a connection of its own (no ORM session: its set-up and commit cost more
    than the statements). None, with nothing written, when the address has an active
    registration there already."""
    with write_connection() as connection:
        seminar = _find_open(connection, find_seminar, params, normalized, now)
        if seminar.active_id is not None:
            return None
        return _insert_new(connection, seminar.id, data, normalized, now)


def _sign_up_again(find_seminar, params: dict, data: SignUpData, normalized: str, now: datetime) -> int:
    """A sign-up of an address with an active registration (or one a moment ago): everything is
    read afresh in this transaction."""
    with write_transaction():
        connection = db.session.connection()
        seminar = _find_open(connection, find_seminar, params, normalized, now)
        reg = None
        if seminar.active_id is not None:
            # Sign-ups do not wait for each other, so the same address twice at once (a double
            # click) must: lock this registration before counting its confirmation mails. It is
            # read afresh under that lock: it may have been cancelled while this waited for the
            # seminar's lock (then this sign-up makes a new one).
            reg = lock(Registration, seminar.active_id)
            if reg.status not in ACTIVE_STATUSES:
                reg = None
        if reg is None:
            return _insert_new(connection, seminar.id, data, normalized, now)
        reg.confirm_mails += 1
        if reg.status == RegistrationStatus.PENDING:
            reg.signed_up_at = now  # a fresh link: the lapse time counts from now
            # Until the address is confirmed the latest sign-up's details count: whoever owns
            # the address is never stuck with what someone else typed with it before.
            reg.name, reg.organisation = data.name.strip(), data.organisation.strip()
            reg.location_type, reg.question = data.location_type, data.question.strip()
            reg.language = data.language
            kinds.CONFIRM_ADDRESS.enqueue(registration=reg)
        else:
            kinds.ALREADY_REGISTERED.enqueue(registration=reg)
        return reg.id


# Built once: a sign-up runs them with its own parameters (building a statement costs more than
# running it on SQLite). Columns of the table, not the mapped class: plain rows, no ORM.
_seminar, _registration = Seminar.__table__.c, Registration.__table__.c
# The active statuses written out, as in the partial unique index on active registrations: only
# then can SQLite and PostgreSQL look the address up in that index (with the statuses as
# parameters they cannot tell the index applies, and go through every pending registration of
# the seminar instead, a longer list with every sign-up).
_IS_ACTIVE = text("registration.status IN (%s)" % ", ".join(f"'{s}'" for s in ACTIVE_STATUSES))
_ACTIVE_ID = select(_registration.id).where(
    _registration.seminar_id == _seminar.id,
    _registration.email_normalized == bindparam("email"),
    _IS_ACTIVE,
).scalar_subquery().label("active_id")
# The seminar locked FOR KEY SHARE (PostgreSQL; SQLite has no row locks, its IMMEDIATE
# transaction covers it), with the id of the address's active registration (`email`), if any.
_LOCK_SEMINAR = (select(_seminar.id, _seminar.state, _seminar.start_at, _ACTIVE_ID)
                 .where(_seminar.id == bindparam("seminar_id"))
                 .with_for_update(read=True, key_share=True, of=Seminar.__table__))
_LOCK_SEMINAR_AT = (select(_seminar.id, _seminar.state, _seminar.start_at, _ACTIVE_ID)
                    .where(_seminar.slug == bindparam("slug"))
                    .with_for_update(read=True, key_share=True, of=Seminar.__table__))
_INSERT_REGISTRATION = insert(Registration.__table__)


@contextmanager
def locked_registration(registration_id: int) -> Iterator[tuple[Registration, Seminar]]:
    """A write transaction with the registration's seminar locked (every change of seats takes
    that lock) and the registration read afresh under it; committed when the block ends."""
    with write_transaction():
        reg = db.session.get(Registration, registration_id)
        seminar = lock(Seminar, reg.seminar_id)
        db.session.refresh(reg)
        yield reg, seminar


def confirm(registration_id: int) -> Registration:
    """Confirm the address: a seat when there is one, else a waitlist place. Idempotent: a
    registration that is no longer pending is returned as it is."""
    now = utcnow()
    with locked_registration(registration_id) as (reg, seminar):
        if reg.status != RegistrationStatus.PENDING:
            return reg
        reason = closed_reason(seminar, now)
        if reason:
            raise RegistrationClosed(reason)
        _seat_or_waitlist(reg, seminar, now)
    return reg


# Called with (registration, now) in the transaction that confirmed an address (the interest
# list: a sign-up with its checkbox ticked confirms the list too; a sign-up counts as interest).
CONFIRM_HOOKS: list = []


def _seat_or_waitlist(reg: Registration, seminar: Seminar, now: datetime) -> None:
    if seminar.confirmed_count < seminar.capacity:
        give_seat(reg, now, mail=kinds.SEAT_CONFIRMED)
    else:
        reg.status = RegistrationStatus.WAITLISTED
        reg.waitlisted_at = now
        kinds.WAITLISTED.enqueue(registration=reg)
    for hook in CONFIRM_HOOKS:
        hook(reg, now)


class AlreadyRegistered(Exception):
    """The address already holds (or waits for) a place at this seminar."""

    def __init__(self, registration: Registration):
        super().__init__("already registered")
        self.registration = registration


def register_proven(seminar_id: int, data: SignUpData) -> Registration:
    """Sign up an address that is already proven (a subscriber's personal reserve link): a seat or
    a waitlist place at once, without a confirmation mail (a pending sign-up of the address is
    confirmed)."""
    now = utcnow()
    with write_transaction():
        seminar = lock(Seminar, seminar_id)
        if seminar is None:
            raise NoSuchSeminar()
        reason = closed_reason(seminar, now)
        if reason:
            raise RegistrationClosed(reason)
        normalized = normalize_email(data.email)
        existing = db.session.scalar(select(Registration).where(
            Registration.seminar_id == seminar.id, Registration.email_normalized == normalized,
            Registration.status.in_(ACTIVE_STATUSES)))
        if existing is not None and existing.status != RegistrationStatus.PENDING:
            raise AlreadyRegistered(existing)
        if existing is not None:
            # Signed up on the page but not confirmed yet: the proven address confirms that
            # sign-up, with the details given now.
            existing.name, existing.organisation = data.name.strip(), data.organisation.strip()
            existing.location_type, existing.language = data.location_type, data.language
            existing.function, existing.register_number = data.function.strip(), data.register_number.strip()
            _seat_or_waitlist(existing, seminar, now)
            return existing
        reg = Registration(seminar=seminar, **data.columns(normalized, now), confirm_mails=0,
                           status=RegistrationStatus.PENDING)
        db.session.add(reg)
        db.session.flush()
        _seat_or_waitlist(reg, seminar, now)
    return reg


def give_seat(reg: Registration, now: datetime, mail: kinds.JobKind) -> None:
    """Hand out a seat (the one place that does): call with the seminar locked. `mail`: the seat
    mail that follows (SEAT_CONFIRMED or PROMOTED)."""
    reg.status = RegistrationStatus.CONFIRMED
    reg.confirmed_at = now
    # The platform adds the attendee first; the seat mail follows once their join link exists.
    kinds.ADD_ATTENDEE.enqueue(registration=reg, mail=mail.short_name)
    schedule_reminders(reg, now)


def can_cancel(reg: Registration, now: datetime | None = None) -> bool:
    """Whether the attendee can still cancel (see `cancel`'s `by_attendee`)."""
    return reg.is_active and not reg.seminar.has_started(now)


def cancel(registration_id: int, *, by_attendee: bool = False) -> Registration:
    """Cancel a registration (by the attendee or an organiser on their behalf). A freed seat goes
    to the first person on the waitlist in the same transaction. Idempotent: a registration no
    longer active is returned as it is.

    `by_attendee`: the attendee can cancel until the seminar starts (RegistrationClosed("started")
    after): from then on the registration is the record of who took part (attendance,
    certificate). An organiser can still cancel it in the portal."""
    now = utcnow()
    with locked_registration(registration_id) as (reg, seminar):
        if reg.status not in ACTIVE_STATUSES:
            return reg
        if by_attendee and seminar.has_started(now):
            raise RegistrationClosed("started")
        had_seat = reg.status == RegistrationStatus.CONFIRMED
        was_pending = reg.status == RegistrationStatus.PENDING
        reg.status = RegistrationStatus.CANCELLED
        reg.cancelled_at = now
        kinds.REMINDER.drop_pending(registration_id=reg.id)
        if had_seat:
            kinds.REMOVE_ATTENDEE.enqueue(registration=reg)
            kinds.REGISTRATION_CANCELLED.enqueue(registration=reg, calendar="CANCEL")
            promote_waitlist(seminar, now)
        elif not was_pending:
            kinds.REGISTRATION_CANCELLED.enqueue(registration=reg)
    return reg


def promote_waitlist(seminar: Seminar, now: datetime | None = None) -> list[Registration]:
    """Fill free seats from the waitlist, first come first served. Call with the seminar locked."""
    now = now or utcnow()
    if closed_reason(seminar, now):
        return []
    free = seminar.capacity - seminar.confirmed_count
    if free <= 0:
        return []
    promoted = list(db.session.scalars(
        select(Registration)
        .where(Registration.seminar_id == seminar.id, Registration.status == RegistrationStatus.WAITLISTED)
        .order_by(Registration.waitlisted_at, Registration.id)
        .limit(free)
    ))
    for reg in promoted:
        give_seat(reg, now, mail=kinds.PROMOTED)
    return promoted


def waitlist_position(reg: Registration) -> int:
    """1 for the first person on the waitlist."""
    ahead = db.session.scalar(
        select(func.count(Registration.id)).where(
            Registration.seminar_id == reg.seminar_id,
            Registration.status == RegistrationStatus.WAITLISTED,
            (Registration.waitlisted_at < reg.waitlisted_at)
            | ((Registration.waitlisted_at == reg.waitlisted_at) & (Registration.id < reg.id)),
        )
    )
    return (ahead or 0) + 1


def lapse_pending(now: datetime) -> int:
    """Pending sign-ups not confirmed in time lapse (their data goes with the privacy purge)."""
    cutoff = now - timedelta(hours=current_app.config["PENDING_LAPSE_HOURS"])
    overdue = (Registration.status == RegistrationStatus.PENDING) & (Registration.signed_up_at < cutoff)
    # The worker asks every round: look first, so an idle worker takes no write lock.
    if db.session.scalar(select(Registration.id).where(overdue).limit(1)) is None:
        db.session.rollback()
        return 0
    with write_transaction():
        result = db.session.execute(
            update(Registration)
            .where(overdue)
            .values(status=RegistrationStatus.LAPSED)
            .execution_options(synchronize_session=False)
        )
    return result.rowcount or 0
