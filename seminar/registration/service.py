"""Registration operations, shared by the views, the CLI, the portal and the tests.

Every operation that changes seats runs in `write_transaction()` with the seminar locked, and
writes the mails and platform jobs that must follow in that same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..database import lock, write_transaction
from ..extensions import db
from ..models import ACTIVE_STATUSES, Registration, RegistrationStatus as S, Seminar
from ..notify.outbox import drop_pending, enqueue, enqueue_mail, schedule_reminders
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


def normalize_email(address: str) -> str:
    return address.strip().lower()


def closed_reason(seminar: Seminar, now: datetime | None = None) -> str | None:
    if seminar.is_cancelled:
        return "cancelled"
    if not seminar.is_published:
        return "draft"
    if seminar.has_started(now):
        return "started"
    return None


def _active(seminar_id: int, email_normalized: str) -> Registration | None:
    return db.session.scalar(
        select(Registration).where(
            Registration.seminar_id == seminar_id,
            Registration.email_normalized == email_normalized,
            Registration.status.in_(ACTIVE_STATUSES),
        )
    )


def sign_up(seminar_id: int, data: SignUpData) -> Registration:
    """Store a pending registration and queue the confirmation mail.

    Signing up again with an address that already has an active registration re-sends the
    confirmation link (still pending) or a note with the manage link (already confirmed or
    waitlisted). The caller shows the same page either way, so the page never reveals whether
    an address was registered.
    """
    for attempt in (1, 2):
        try:
            return _sign_up(seminar_id, data)
        except IntegrityError:
            # The same address signed up at the same moment in another request, and that one
            # stored its registration first (the unique index on active registrations said no):
            # once more, now finding it, as if the two had come one after the other.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sign_up(seminar_id: int, data: SignUpData) -> Registration:
    now = utcnow()
    with write_transaction():
        # A sign-up changes no seats, so sign-ups need not wait for each other: a shared lock on
        # the seminar (PostgreSQL's FOR KEY SHARE, what inserting a registration takes anyway)
        # still makes them wait for, and be waited for by, anything that changes the seminar
        # (cancel, publish, update, a confirmation: all lock it FOR UPDATE). SQLite's IMMEDIATE
        # transaction serialises every writer regardless.
        seminar = _lock_shared(seminar_id)
        reason = closed_reason(seminar, now)
        if reason:
            raise RegistrationClosed(reason)
        normalized = normalize_email(data.email)
        reg = _active(seminar.id, normalized)
        if reg is None:
            reg = Registration(
                seminar=seminar, name=data.name.strip(), email=data.email.strip(),
                email_normalized=normalized, organisation=data.organisation.strip(),
                location_type=data.location_type, question=data.question.strip(),
                language=data.language, consent_at=now, signed_up_at=now,
                status=S.PENDING.value, confirm_mails=1,
            )
            db.session.add(reg)
            db.session.flush()
            # A registration made just now has no work queued yet: no need to look for the key.
            enqueue_mail("confirm_address", reg, key=f"confirm:{reg.id}:1", new_key=True)
        else:
            # Sign-ups do not wait for each other, so the same address twice at once (a double
            # click) must: lock this registration before counting its confirmation mails.
            reg = lock(Registration, reg.id)
            reg.confirm_mails += 1
            if reg.status == S.PENDING.value:
                reg.signed_up_at = now  # a fresh link: the lapse time counts from now
                enqueue_mail("confirm_address", reg, key=f"confirm:{reg.id}:{reg.confirm_mails}")
            else:
                enqueue_mail("already_registered", reg, key=f"already:{reg.id}:{reg.confirm_mails}")
    return reg


def _lock_shared(seminar_id: int) -> Seminar | None:
    stmt = (
        select(Seminar)
        .where(Seminar.id == seminar_id)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def confirm(registration_id: int) -> Registration:
    """Confirm the address: a seat when there is one, else a waitlist place. Idempotent: a
    registration that is no longer pending is returned as it is."""
    now = utcnow()
    with write_transaction():
        reg = db.session.get(Registration, registration_id)
        seminar = lock(Seminar, reg.seminar_id)
        db.session.refresh(reg)
        if reg.status != S.PENDING.value:
            return reg
        reason = closed_reason(seminar, now)
        if reason:
            raise RegistrationClosed(reason)
        if seminar.confirmed_count < seminar.capacity:
            give_seat(reg, now, mail="seat_confirmed")
        else:
            reg.status = S.WAITLISTED.value
            reg.waitlisted_at = now
            enqueue_mail("waitlisted", reg, key=f"waitlisted:{reg.id}")
    return reg


def give_seat(reg: Registration, now: datetime, mail: str) -> None:
    """Hand out a seat (the one place that does): call with the seminar locked."""
    reg.status = S.CONFIRMED.value
    reg.confirmed_at = now
    # The platform adds the attendee first; the seat mail follows once their join link exists.
    enqueue("video.add_attendee", registration=reg, key=f"add:{reg.id}", payload={"mail": mail})
    schedule_reminders(reg, now)


def cancel(registration_id: int) -> Registration:
    """Cancel a registration (by the attendee or an organiser on their behalf). A freed seat goes
    to the first person on the waitlist in the same transaction."""
    now = utcnow()
    with write_transaction():
        reg = db.session.get(Registration, registration_id)
        seminar = lock(Seminar, reg.seminar_id)
        db.session.refresh(reg)
        if reg.status not in ACTIVE_STATUSES:
            return reg
        had_seat = reg.status == S.CONFIRMED.value
        was_pending = reg.status == S.PENDING.value
        reg.status = S.CANCELLED.value
        reg.cancelled_at = now
        drop_pending("mail.reminder", registration_id=reg.id)
        if had_seat:
            enqueue("video.remove_attendee", registration=reg, key=f"remove:{reg.id}")
            enqueue_mail("registration_cancelled", reg, key=f"cancelled:{reg.id}", invite="CANCEL")
            promote_waitlist(seminar, now)
        elif not was_pending:
            enqueue_mail("registration_cancelled", reg, key=f"cancelled:{reg.id}")
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
        .where(Registration.seminar_id == seminar.id, Registration.status == S.WAITLISTED.value)
        .order_by(Registration.waitlisted_at, Registration.id)
        .limit(free)
    ))
    for reg in promoted:
        give_seat(reg, now, mail="promoted")
    return promoted


def waitlist_position(reg: Registration) -> int:
    """1 for the first person on the waitlist."""
    ahead = db.session.scalar(
        select(func.count(Registration.id)).where(
            Registration.seminar_id == reg.seminar_id,
            Registration.status == S.WAITLISTED.value,
            (Registration.waitlisted_at < reg.waitlisted_at)
            | ((Registration.waitlisted_at == reg.waitlisted_at) & (Registration.id < reg.id)),
        )
    )
    return (ahead or 0) + 1


def lapse_pending(now: datetime) -> int:
    """Pending sign-ups not confirmed in time lapse (their data goes with the privacy purge)."""
    cutoff = now - timedelta(hours=current_app.config["PENDING_LAPSE_HOURS"])
    overdue = (Registration.status == S.PENDING.value) & (Registration.signed_up_at < cutoff)
    # The worker asks every round: look first, so an idle worker takes no write lock.
    if db.session.scalar(select(Registration.id).where(overdue).limit(1)) is None:
        db.session.rollback()
        return 0
    with write_transaction():
        result = db.session.execute(
            update(Registration)
            .where(overdue)
            .values(status=S.LAPSED.value)
            .execution_options(synchronize_session=False)
        )
    return result.rowcount or 0
