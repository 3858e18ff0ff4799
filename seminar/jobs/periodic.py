"""Housekeeping the worker does between batches (cheap when nothing is due)."""
from __future__ import annotations

from datetime import datetime

from .. import privacy
from ..attendance import followup as attendance_followup
from ..notify import mail_schedule, relay_notice
from ..registration import service as registration_service
from ..timeutil import utcnow
from ..video import reconcile as video_reconcile


def run_periodic(now: datetime | None = None) -> None:
    """Cheap housekeeping the worker does on every round."""
    now = now or utcnow()
    registration_service.lapse_pending(now)
    privacy.purge_if_due(now)
    video_reconcile.schedule_platform_checks(now)  # nightly reconcile, attendance
    attendance_followup.schedule_follow_ups(now)  # certificates and follow-up mails
    mail_schedule.start_early(now)  # bulk mail that the relay's quota can't send in time
    relay_notice.alert_if_held(now)  # organisers told once mail has been held for an hour
