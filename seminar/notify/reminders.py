"""Reminder mails before a seminar starts, at its reminder offsets (`Seminar.reminder_hours`)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from ..jobs import kinds
from ..models import Registration, Seminar
from ..timeutil import utcnow


def _reminders(registration: Registration, now: datetime) -> list[tuple[int, datetime]]:
    """(hours before, due time) of each reminder still to come."""
    seminar = registration.seminar
    return [(hours, seminar.start_at - timedelta(hours=hours))
            for hours in Seminar.hours_list(seminar.reminder_hours)
            if seminar.start_at - timedelta(hours=hours) > now]


def schedule_reminders(registration: Registration, now: datetime | None = None) -> None:
    """Reminder mails at the seminar's reminder offsets before its start; none in the past."""
    for hours, due in _reminders(registration, now or utcnow()):
        kinds.REMINDER.enqueue(registration=registration, due_at=due, hours=hours)


def reminder_keys(registrations: Iterable[Registration], now: datetime | None = None) -> list[str]:
    """The keys `schedule_reminders` will queue under (to look them up together first)."""
    now = now or utcnow()
    return [kinds.REMINDER.key_for(registration=registration, hours=hours)
            for registration in registrations for hours, _ in _reminders(registration, now)]
