"""The interest list: who asked to hear about the next seminars, and which announcement reached whom.

A separate purpose from a sign-up, with its own consent and retention (privacy.py, reach/retention.py).
"""
from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models import status_column
from ..timeutil import UTCDateTime, utcnow


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"            # asked, has not clicked the confirmation link yet
    ACTIVE = "active"              # confirmed: gets announcements
    UNSUBSCRIBED = "unsubscribed"  # kept (address only) so that it is never mailed again


def _nonce() -> str:
    return secrets.token_urlsafe(12)


class Subscriber(db.Model):
    """One address on the interest list.

    `nonce` is part of every token mailed to the subscriber: when the row is erased and its id is
    used again (SQLite may), the old links still say nothing about the new person.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254), unique=True)
    # Kept only when given, to fill in the one-press reserve form (the purpose stated on the form).
    name: Mapped[str] = mapped_column(String(120), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    location_type: Mapped[str] = mapped_column(String(40), default="")
    language: Mapped[str] = mapped_column(String(5), default="nl")
    status: Mapped[SubscriberStatus] = mapped_column(
        status_column(SubscriberStatus, "subscriber_status", 16), default=SubscriberStatus.PENDING)
    source: Mapped[str] = mapped_column(String(16), default="home")  # home | signup
    nonce: Mapped[str] = mapped_column(String(24), default=_nonce)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last sign of interest: a confirmation or a sign-up for a seminar (retention counts from here).
    active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the "still interested?" mail was queued; cleared by the answer.
    reconfirm_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirm_mails: Mapped[int] = mapped_column(default=0)
    # Asked through the sign-up form's checkbox: confirming that sign-up confirms the list too.
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration.id", ondelete="SET NULL"), index=True)

    @property
    def is_active(self) -> bool:
        return self.status == SubscriberStatus.ACTIVE


class Announcement(db.Model):
    """An organiser (or the CLI) announced a seminar to the list. Announcing again makes another
    row; each subscriber still gets at most one mail per seminar (AnnouncementDelivery)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    recipients: Mapped[int] = mapped_column(default=0)

    seminar = relationship("Seminar")


class AnnouncementDelivery(db.Model):
    """One subscriber's mail about one seminar: unique per seminar and subscriber, so no one gets
    the same announcement twice. Its counts survive the subscriber (subscriber_id is then NULL)."""

    __table_args__ = (
        UniqueConstraint("seminar_id", "subscriber_id", name="uq_announcement_delivery_seminar_subscriber"),
        Index("ix_announcement_delivery_announcement", "announcement_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcement.id", ondelete="CASCADE"))
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the subscriber unsubscribed with this mail's link, or took a seat with its reserve link.
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
