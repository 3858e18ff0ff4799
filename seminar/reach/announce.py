"""Announcing a seminar to the interest list, and the one-press seat from an announcement.

Each subscriber gets at most one announcement per seminar (a unique row per seminar and
subscriber, AnnouncementDelivery): announcing again sends only to those who have not had it,
e.g. people who joined the list since. People already signed up for the seminar are skipped.
The mails go through the outbox as bulk mail, written in the same transaction as the rows.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select

from ..database import lock, write_transaction
from ..extensions import db
from ..jobs import kinds
from ..models import ACTIVE_STATUSES, Job, JobState, Registration, RegistrationStatus, Seminar
from ..registration import service as registration_service
from ..registration.service import SignUpData, closed_reason
from ..timeutil import utcnow
from .models import Announcement, AnnouncementDelivery, Subscriber, SubscriberStatus



class AnnounceRefused(Exception):
    """The seminar cannot be announced; `reason`: draft, cancelled, started, full."""

    def __init__(self, reason: str):
        super().__init__(REASONS[reason])
        self.reason = reason


REASONS = {
    "draft": "the seminar is not published",
    "cancelled": "the seminar is cancelled",
    "started": "the seminar has already started",
    "full": "the seminar is full: there is no seat to announce",
    "missing": "there is no seminar with that id",
}


@dataclass
class AnnounceResult:
    recipients: int
    announcement_id: int | None = None


def refusal(seminar: Seminar | None) -> str | None:
    """Why this seminar cannot be announced now (None: it can)."""
    if seminar is None:
        return "missing"
    reason = closed_reason(seminar)
    if reason:
        return reason
    if seminar.seats_left <= 0:
        return "full"
    return None


def recipients(seminar_id: int) -> list[int]:
    """Ids of the subscribers who would get the announcement now: on the list (confirmed), not
    announced this seminar before, not signed up for it."""
    announced = select(AnnouncementDelivery.subscriber_id).where(
        AnnouncementDelivery.seminar_id == seminar_id, AnnouncementDelivery.subscriber_id.is_not(None))
    signed_up = select(Registration.email_normalized).where(
        Registration.seminar_id == seminar_id, Registration.status.in_(ACTIVE_STATUSES))
    return list(db.session.scalars(
        select(Subscriber.id).where(
            Subscriber.status == SubscriberStatus.ACTIVE,
            Subscriber.id.not_in(announced),
            Subscriber.email_normalized.not_in(signed_up),
        ).order_by(Subscriber.id)))


def announce(seminar_id: int, *, dry_run: bool = False, user_id: int | None = None) -> AnnounceResult:
    """Queue the announcement of a published, open, not full seminar to everyone on the list who
    has not had it. With `dry_run`, only count them. Raises AnnounceRefused."""
    if dry_run:
        reason = refusal(db.session.get(Seminar, seminar_id))
        if reason:
            db.session.rollback()
            raise AnnounceRefused(reason)
        count = len(recipients(seminar_id))
        db.session.rollback()
        return AnnounceResult(count)
    now = utcnow()
    with write_transaction():
        # Locked: the seminar cannot be cancelled, nor announced by someone else, meanwhile.
        seminar = lock(Seminar, seminar_id)
        reason = refusal(seminar)
        if reason:
            raise AnnounceRefused(reason)
        ids = recipients(seminar_id)
        record = Announcement(seminar_id=seminar_id, user_id=user_id, recipients=len(ids), created_at=now)
        db.session.add(record)
        db.session.flush()
        if ids:
            # Plain INSERTs: an announcement to thousands writes two rows per subscriber.
            connection = db.session.connection()
            connection.execute(insert(AnnouncementDelivery.__table__), [
                dict(announcement_id=record.id, seminar_id=seminar_id, subscriber_id=sub_id, created_at=now)
                for sub_id in ids])
            # Each subscriber's job, as kinds.ANNOUNCEMENT.enqueue would queue it (its key is
            # new: the deliveries just written say nobody here had this seminar's announcement).
            kind = kinds.ANNOUNCEMENT
            connection.execute(insert(Job.__table__), [
                dict(kind=kind.name, lane=kind.lane, key=kind.key_for(seminar_id=seminar_id, subscriber_id=sub_id),
                     seminar_id=seminar_id, payload={"subscriber_id": sub_id, "announcement_id": record.id},
                     state=JobState.PENDING, due_at=now)
                for sub_id in ids])
        result = AnnounceResult(len(ids), record.id)
    return result


class ReserveRefused(Exception):
    """The reserve link cannot be used: `reason` is unsubscribed, closed (with the sign-up's
    reason in `closed`), or registered (the address already has a place; `registration`)."""

    def __init__(self, reason: str, closed: str | None = None, registration: Registration | None = None):
        super().__init__(reason)
        self.reason, self.closed, self.registration = reason, closed, registration


def check_reserve(sub: Subscriber, seminar: Seminar) -> None:
    """Raise ReserveRefused when `sub` cannot take a place at `seminar` with the link now."""
    if not sub.is_active:
        raise ReserveRefused("unsubscribed")
    reason = closed_reason(seminar)
    if reason:
        raise ReserveRefused("closed", closed=reason)
    # A sign-up still waiting for its confirmation is no place yet: the press confirms it.
    existing = db.session.scalar(select(Registration).where(
        Registration.seminar_id == seminar.id, Registration.email_normalized == sub.email_normalized,
        Registration.status.in_(ACTIVE_STATUSES), Registration.status != RegistrationStatus.PENDING))
    if existing is not None:
        raise ReserveRefused("registered", registration=existing)


def reserve(sub: Subscriber, seminar: Seminar, *, name: str, organisation: str, location_type: str,
            language: str, function: str = "", register_number: str = "") -> Registration:
    """The one press: a seat (or a waitlist place) for the subscriber's proven address, without a
    second confirmation mail. The list keeps the name and organisation as given now."""
    check_reserve(sub, seminar)
    data = SignUpData(name=name, email=sub.email, organisation=organisation, location_type=location_type,
                      language=language, function=function, register_number=register_number)
    try:
        reg = registration_service.register_proven(seminar.id, data)
    except registration_service.AlreadyRegistered as exc:  # a second press at the same moment
        raise ReserveRefused("registered", registration=exc.registration) from None
    except registration_service.RegistrationClosed as exc:
        raise ReserveRefused("closed", closed=exc.reason) from None
    # (The sign-up the announcement brought is counted by service.on_registration_confirmed.)
    with write_transaction():
        sub = db.session.get(Subscriber, sub.id)
        if sub is not None:
            sub.name, sub.organisation, sub.location_type = name.strip(), organisation.strip(), location_type
    return reg
