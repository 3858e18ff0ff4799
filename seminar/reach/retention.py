"""The interest list's own clock (privacy.py runs it with every purge).

- An address with no confirmation or sign-up for INTEREST_RETENTION_DAYS is asked once whether it
  still wants the announcements; without an answer within 30 days it is removed.
- A request never confirmed lapses after PENDING_LAPSE_HOURS: a new address is removed; one that
  had unsubscribed before goes back to unsubscribed (so it stays protected from announcements).
Every removal writes a PurgeLog row with counts only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..database import write_transaction
from ..extensions import db
from ..models import PurgeLog
from ..jobs import kinds
from .models import Subscriber, SubscriberStatus as S
from .service import forget
from .tokens import REANSWER_DAYS


@dataclass
class ListReport:
    asked: int = 0     # "still interested?" queued
    removed: int = 0   # no answer in time
    lapsed: int = 0    # never confirmed

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would" if dry_run else "did"
        return [f"interest list: {verb} ask {self.asked} addresses whether they are still interested",
                f"interest list: {verb} remove {self.removed} without an answer and {self.lapsed} unconfirmed"]


def _quiet_since(now: datetime):
    return now - timedelta(days=current_app.config["INTEREST_RETENTION_DAYS"])


def run(now: datetime, dry_run: bool = False) -> ListReport:
    active = Subscriber.status == S.ACTIVE
    last_interest = func.coalesce(Subscriber.active_at, Subscriber.confirmed_at)
    to_ask = select(Subscriber).where(active, Subscriber.reconfirm_asked_at.is_(None),
                                      last_interest < _quiet_since(now))
    unanswered = select(Subscriber).where(
        active, Subscriber.reconfirm_asked_at < now - timedelta(days=REANSWER_DAYS))
    lapsing = select(Subscriber).where(
        Subscriber.status == S.PENDING,
        Subscriber.requested_at < now - timedelta(hours=current_app.config["PENDING_LAPSE_HOURS"]))
    if dry_run:
        count = lambda stmt: len(db.session.scalars(stmt).all())  # noqa: E731
        report = ListReport(count(to_ask), count(unanswered), count(lapsing))
        db.session.rollback()
        return report
    report = ListReport()
    with write_transaction():
        for sub in db.session.scalars(to_ask).all():
            sub.reconfirm_asked_at = now
            kinds.LIST_STILL.enqueue(subscriber_id=sub.id)
            report.asked += 1
        gone = db.session.scalars(unanswered).all()
        report.removed = len(gone)
        cleared = forget(list(gone))
        if gone:
            db.session.add(PurgeLog(reason="interest", subscribers=len(gone), messages=cleared))
        lapsed = []
        for sub in db.session.scalars(lapsing).all():
            if sub.unsubscribed_at is not None:
                sub.status = S.UNSUBSCRIBED
                sub.name = sub.organisation = sub.location_type = ""
                sub.registration_id = None
            else:
                lapsed.append(sub)
        report.lapsed = len(lapsed)
        if lapsed:
            db.session.add(PurgeLog(reason="lapsed", subscribers=len(lapsed), messages=forget(lapsed)))
    return report
