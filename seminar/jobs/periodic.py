"""Housekeeping the worker does between batches (cheap when nothing is due)."""
from __future__ import annotations

import logging
from datetime import datetime

from .. import privacy
from ..attendance import followup as attendance_followup
from ..extensions import db
from ..notify import mail_schedule, relay_notice
from ..registration import service as registration_service
from ..timeutil import utcnow
from ..video import reconcile as video_reconcile

log = logging.getLogger("seminar.worker")

TASKS = (
    registration_service.lapse_pending,
    privacy.purge_if_due,
    video_reconcile.schedule_platform_checks,  # nightly reconcile, attendance
    attendance_followup.schedule_follow_ups,  # certificates and follow-up mails
    mail_schedule.start_early,  # bulk mail that the relay's quota can't send in time
    relay_notice.alert_if_held,  # organisers told once mail has been held for an hour
)


def run_periodic(now: datetime | None = None) -> None:
    """Cheap housekeeping the worker does on every round. Each task on its own: one that fails
    (Redis, where the relay's pace lives, away) is logged and the others, and the batches after
    them, still run: a person's mail does not wait for housekeeping."""
    now = now or utcnow()
    for task in TASKS:
        try:
            task(now)
        except Exception:  # noqa: BLE001 - logged; tried again next round
            db.session.rollback()
            log.exception("housekeeping %s failed; the worker goes on", task.__qualname__)
