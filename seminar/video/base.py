"""The one provider interface every video platform implements.

The worker calls providers (never a web request). A provider raises `PlatformError` for anything
that went wrong at the platform; `temporary` says whether trying again later can help, and
`retry_after` carries the platform's own wish (e.g. a 429's Retry-After) in seconds.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..models import Registration, Seminar


@dataclass
class Meeting:
    meeting_id: str
    join_url: str
    host_url: str | None = None


@dataclass
class AttendeeLink:
    join_url: str
    registrant_id: str | None = None


class PlatformError(Exception):
    def __init__(self, message: str, *, temporary: bool = True, retry_after: float | None = None,
                 gone: bool = False):
        super().__init__(message)
        self.temporary = temporary
        self.retry_after = retry_after
        self.gone = gone  # the meeting or registrant no longer exists at the platform


class VideoProvider(ABC):
    name: str = ""
    # Whether each attendee gets a link of their own (Zoom, Jitsi with JWT) or the shared one.
    personal_links: bool = True
    # How many attendees one add call may carry.
    batch_size: int = 1

    def __init__(self, config):
        self.config = config

    @abstractmethod
    def create_meeting(self, seminar: Seminar) -> Meeting: ...

    @abstractmethod
    def update_meeting(self, seminar: Seminar) -> None: ...

    @abstractmethod
    def delete_meeting(self, seminar: Seminar) -> None: ...

    @abstractmethod
    def add_attendees(self, seminar: Seminar, registrations: list[Registration]) -> dict[int, AttendeeLink]:
        """Register attendees; returns each registration id's personal link."""

    @abstractmethod
    def remove_attendee(self, seminar: Seminar, registration: Registration) -> None: ...

    def attendance(self, seminar: Seminar) -> list[dict]:
        """Who joined, when available from the platform: [{name, email, join_time, leave_time}]."""
        return []
