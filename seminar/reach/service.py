"""The interest list: subscribe (double opt-in), confirm, unsubscribe, and a person's data.

Shared by the public pages, the sign-up form's checkbox, the portal, the CLI and the tests. A
subscribe never tells the caller whether the address was known: the page is the same, and only
the mailbox's owner learns anything (a confirmation link, or a note that they are on the list).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ..database import write_transaction
from ..extensions import db
from ..jobs import kinds
from ..models import Job, JobState, PurgeLog, Registration, RegistrationStatus
from ..registration import service as registration_service
from ..registration.service import normalize_email
from ..timeutil import utcnow
from .models import AnnouncementDelivery, Subscriber, SubscriberStatus as S

# Every mail the interest list sends (their sent copies go with the address).
MAIL_KINDS = tuple(kind.name for kind in (kinds.LIST_CONFIRM, kinds.LIST_KNOWN, kinds.ANNOUNCEMENT,
                                           kinds.LIST_STILL))


@dataclass
class SubscribeData:
    email: str
    name: str = ""
    organisation: str = ""
    location_type: str = ""
    language: str = "nl"


def by_email(email: str) -> Subscriber | None:
    return db.session.scalar(select(Subscriber).where(Subscriber.email_normalized == normalize_email(email)))


def _queue_confirmation(sub: Subscriber) -> None:
    sub.confirm_mails += 1
    kinds.LIST_CONFIRM.enqueue(subscriber_id=sub.id)


def subscribe(data: SubscribeData, registration_id: int | None = None) -> None:
    """Ask for the announcements. New, pending or unsubscribed addresses get a confirmation link
    (or, with `registration_id` of a pending sign-up, confirm together with that sign-up); an
    address already on the list gets a note saying so. Nothing is changed on an active entry:
    whoever typed the address has not proven it is theirs."""
    for attempt in (1, 2):
        try:
            _subscribe(data, registration_id)
            return
        except IntegrityError:
            # The same address at the same moment in another request: once more, now finding it.
            db.session.rollback()
            if attempt == 2:
                raise


def _subscribe(data: SubscribeData, registration_id: int | None) -> None:
    now = utcnow()
    with write_transaction():
        normalized = normalize_email(data.email)
        sub = db.session.scalar(select(Subscriber).where(Subscriber.email_normalized == normalized))
        if sub is not None and sub.is_active:
            sub.confirm_mails += 1
            kinds.LIST_KNOWN.enqueue(subscriber_id=sub.id)
            return
        if sub is None:
            sub = Subscriber(email_normalized=normalized, confirm_mails=0)
            db.session.add(sub)
        sub.email = data.email.strip()
        sub.status = S.PENDING
        sub.requested_at = now
        sub.language = data.language
        sub.source = "signup" if registration_id else "home"
        for field in ("name", "organisation", "location_type"):
            value = (getattr(data, field) or "").strip()
            if value:
                setattr(sub, field, value)
        db.session.flush()
        pending_signup = registration_id is not None and db.session.scalar(
            select(Registration.status).where(Registration.id == registration_id)) == RegistrationStatus.PENDING
        sub.registration_id = registration_id if pending_signup else None
        if not pending_signup:
            _queue_confirmation(sub)


def _activate(sub: Subscriber, now: datetime) -> None:
    sub.status = S.ACTIVE
    sub.confirmed_at = sub.active_at = now
    sub.unsubscribed_at = sub.reconfirm_asked_at = None
    sub.registration_id = None


def confirm(subscriber_id: int) -> Subscriber | None:
    """The confirmation link was pressed: on the list. Idempotent. None: the address was removed
    meanwhile (erased, or lapsed between the page and the press)."""
    now = utcnow()
    with write_transaction():
        sub = db.session.get(Subscriber, subscriber_id)
        if sub is not None and sub.status == S.PENDING:
            _activate(sub, now)
    return sub


def still_interested(subscriber_id: int) -> Subscriber | None:
    """The answer to "still interested?": the retention period starts again. None: removed meanwhile."""
    now = utcnow()
    with write_transaction():
        sub = db.session.get(Subscriber, subscriber_id)
        if sub is not None and sub.is_active:
            sub.active_at = now
            sub.reconfirm_asked_at = None
    return sub


def unsubscribe(subscriber_id: int, seminar_id: int | None = None) -> None:
    """Off the list for good: only the address is kept, so that it is never mailed again (not even
    when it signs up for a seminar without ticking the box). `seminar_id`: the announcement whose
    link was used (counted for the portal)."""
    now = utcnow()
    with write_transaction():
        sub = db.session.get(Subscriber, subscriber_id)
        if sub is None or sub.status == S.UNSUBSCRIBED:
            return
        sub.status = S.UNSUBSCRIBED
        sub.unsubscribed_at = now
        sub.name = sub.organisation = sub.location_type = ""
        sub.registration_id = sub.reconfirm_asked_at = None
        # Announcements queued but not sent yet find the address unsubscribed and are not sent.
        if seminar_id is not None:
            db.session.execute(
                update(AnnouncementDelivery)
                .where(AnnouncementDelivery.seminar_id == seminar_id,
                       AnnouncementDelivery.subscriber_id == sub.id,
                       AnnouncementDelivery.unsubscribed_at.is_(None))
                .values(unsubscribed_at=now).execution_options(synchronize_session=False))


def on_registration_confirmed(reg: Registration, now: datetime) -> None:
    """A sign-up confirmed (or taken with a reserve link): the list entry it asked for is
    confirmed with it, and an address on the list shows interest (its retention starts again)."""
    sub = db.session.scalar(select(Subscriber).where(Subscriber.email_normalized == reg.email_normalized))
    if sub is None:
        return
    if sub.status == S.PENDING and sub.registration_id == reg.id:
        _activate(sub, now)
    elif sub.is_active:
        sub.active_at = now
        sub.reconfirm_asked_at = None
        # An announcement of this seminar reached them: counted as a sign-up it brought.
        db.session.execute(
            update(AnnouncementDelivery)
            .where(AnnouncementDelivery.seminar_id == reg.seminar_id,
                   AnnouncementDelivery.subscriber_id == sub.id, AnnouncementDelivery.signed_up_at.is_(None))
            .values(signed_up_at=now).execution_options(synchronize_session=False))


registration_service.CONFIRM_HOOKS.append(on_registration_confirmed)


def pending_with(reg: Registration) -> bool:
    """Whether confirming this sign-up also confirms an interest-list entry."""
    return db.session.scalar(select(Subscriber.id).where(
        Subscriber.registration_id == reg.id, Subscriber.status == S.PENDING)) is not None


def export(email: str) -> dict | None:
    """The list entry of one address (privacy export)."""
    sub = by_email(email)
    if sub is None:
        return None
    iso = lambda moment: moment.isoformat() if moment else None  # noqa: E731
    got = db.session.scalars(select(AnnouncementDelivery).where(AnnouncementDelivery.subscriber_id == sub.id))
    return {
        "email": sub.email, "name": sub.name, "organisation": sub.organisation,
        "location_type": sub.location_type, "language": sub.language, "status": sub.status,
        "source": sub.source, "requested_at": iso(sub.requested_at),
        "confirmed_at": iso(sub.confirmed_at), "unsubscribed_at": iso(sub.unsubscribed_at),
        "last_interest_at": iso(sub.active_at),
        "announcements": [{"seminar": d.seminar_id, "at": iso(d.created_at)} for d in got],
    }


def forget(subscribers: list[Subscriber]) -> int:
    """Remove list entries entirely, with the copies of the mails sent to them; queued mail to them
    is not sent. Call inside a write transaction. Returns how many mails were cleared."""
    if not subscribers:
        return 0
    ids = [sub.id for sub in subscribers]
    addresses = [sub.email_normalized for sub in subscribers]
    _drop_queued(ids)
    cleared = db.session.execute(
        update(Job).where(Job.kind.in_(MAIL_KINDS), func.lower(Job.recipient).in_(addresses))
        .values(message=None, recipient=None, last_error=None)
        .execution_options(synchronize_session=False)).rowcount or 0
    # Mail still queued to them finds no subscriber when it is composed, and is not sent.
    db.session.execute(delete(Subscriber).where(Subscriber.id.in_(ids)))
    return cleared


def _drop_queued(ids: list[int]) -> None:
    """Remove the list mails still waiting for these subscribers. SQLite may give a removed id to
    the next subscriber: a waiting job would then mail that person, and its key would block their
    own announcement (the unique key of waiting jobs)."""
    seminars = db.session.execute(select(AnnouncementDelivery.seminar_id, AnnouncementDelivery.subscriber_id)
                                  .where(AnnouncementDelivery.subscriber_id.in_(ids))).all()
    keys = [kinds.ANNOUNCEMENT.key_for(seminar_id=seminar_id, subscriber_id=sub_id) for seminar_id, sub_id in seminars]
    keys += [kinds.LIST_STILL.key_for(subscriber_id=sub_id) for sub_id in ids]
    for start in range(0, len(keys), 500):
        db.session.execute(delete(Job).where(Job.kind.in_(MAIL_KINDS), Job.state == JobState.PENDING,
                                             Job.key.in_(keys[start:start + 500])))
    # The confirmation mails have no key: few and due at once, found by their payload.
    unkeyed = db.session.scalars(select(Job).where(
        Job.kind.in_((kinds.LIST_CONFIRM.name, kinds.LIST_KNOWN.name)), Job.state == JobState.PENDING))
    for job in unkeyed:
        if (job.payload or {}).get("subscriber_id") in ids:
            db.session.delete(job)
    db.session.flush()


def erase(email: str) -> int:
    """Erase one address from the list now (privacy erase, or an organiser). Returns 1 or 0."""
    with write_transaction():
        sub = by_email(email)
        if sub is None:
            return 0
        cleared = forget([sub])
        db.session.add(PurgeLog(reason="request", subscribers=1, messages=cleared))
    return 1
