"""Figures for the portal: the list's size and growth, and how each announcement did."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..extensions import db
from ..jobs import kinds
from ..models import Job, JobState, Seminar
from ..timeutil import to_local, utcnow
from .models import Announcement, AnnouncementDelivery, Subscriber, SubscriberStatus


def status_counts() -> dict[str, int]:
    counts = dict(db.session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all())
    return {str(status): counts.get(status, 0) for status in SubscriberStatus}


@dataclass
class Month:
    label: str       # YYYY-MM
    joined: int      # confirmed that month
    left: int        # unsubscribed that month
    total: int       # on the list at the end of the month (of the addresses still stored)


def growth(months: int = 12, now: datetime | None = None) -> list[Month]:
    """Per month (local time), the last `months` months: joined, left and the list's size."""
    now = now or utcnow()
    joined, left = Counter(), Counter()
    for confirmed, unsubscribed in db.session.execute(
            select(Subscriber.confirmed_at, Subscriber.unsubscribed_at).where(Subscriber.confirmed_at.is_not(None))):
        joined[f"{to_local(confirmed):%Y-%m}"] += 1
        if unsubscribed is not None:
            left[f"{to_local(unsubscribed):%Y-%m}"] += 1
    local = to_local(now)
    labels = []
    year, month = local.year, local.month
    for _ in range(months):
        labels.append(f"{year:04}-{month:02}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    labels.reverse()
    out, total = [], sum(n for label, n in joined.items() if label < labels[0]) - sum(
        n for label, n in left.items() if label < labels[0])
    for label in labels:
        total += joined[label] - left[label]
        out.append(Month(label, joined[label], left[label], total))
    return out


@dataclass
class AnnouncementFigures:
    announcement: Announcement
    seminar: Seminar
    queued: int
    sent: int
    unsubscribed: int
    signed_up: int


def announcements() -> list[AnnouncementFigures]:
    rows = []
    for record in db.session.scalars(select(Announcement).order_by(Announcement.created_at.desc())):
        deliveries = select(AnnouncementDelivery).where(AnnouncementDelivery.announcement_id == record.id).subquery()
        queued, unsubscribed, signed_up = db.session.execute(select(
            func.count(), func.count(deliveries.c.unsubscribed_at), func.count(deliveries.c.signed_up_at))
            .select_from(deliveries)).one()
        keys = [kinds.ANNOUNCEMENT.key_for(seminar_id=record.seminar_id, subscriber_id=sub_id) for sub_id in db.session.scalars(
            select(AnnouncementDelivery.subscriber_id).where(
                AnnouncementDelivery.announcement_id == record.id,
                AnnouncementDelivery.subscriber_id.is_not(None)))]
        sent = 0
        for start in range(0, len(keys), 500):
            sent += db.session.scalar(select(func.count(Job.id)).where(
                Job.kind == kinds.ANNOUNCEMENT.name, Job.state == JobState.DONE, Job.last_error.is_(None),
                Job.key.in_(keys[start:start + 500]))) or 0
        rows.append(AnnouncementFigures(record, record.seminar, queued, sent, unsubscribed, signed_up))
    return rows
