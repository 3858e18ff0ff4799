"""Every job family and periodic task, in one place for the worker."""
from __future__ import annotations

from datetime import datetime

from . import privacy
from .manage import mails as portal_mails  # noqa: F401  (mails to hosts and organisers)
from .notify import delivery  # noqa: F401  (mail family)
from .registration import service as registration_service
from .timeutil import utcnow
from .video import jobs as video_jobs  # noqa: F401  (video family)
from .video import reconcile as video_reconcile


def run_periodic(now: datetime | None = None) -> None:
    """Cheap housekeeping the worker does on every round."""
    now = now or utcnow()
    registration_service.lapse_pending(now)
    privacy.purge_if_due(now)
    video_reconcile.schedule_platform_checks(now)  # nightly reconcile, attendance
