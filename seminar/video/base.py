"""The one provider interface every video platform implements.

The worker calls providers (never a web request). A provider raises `PlatformError` for anything
that went wrong at the platform: its `problem` says what kind of trouble it is (and so whether trying
again can help), `retry_after` carries the platform's own wish (e.g. a 429's Retry-After) in seconds.
"""
from __future__ import annotations

import enum
import hashlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

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


@dataclass
class Registrant:
    """Someone on the platform's own list of a meeting (for the nightly reconcile)."""

    registrant_id: str
    email: str
    status: str  # approved / pending / denied


@dataclass
class Attendance:
    """One join (and leave) as the platform's report tells it."""

    participant_id: str | None
    registrant_id: str | None
    joined_at: datetime | None
    left_at: datetime | None
    email: str | None = None  # to match by address when the registrant id is missing
    name: str | None = None  # shown to organisers for a participant we could not match
    source: str = "report"


class Problem(enum.Enum):
    """What went wrong at the platform, which decides what the worker does about it."""

    UNAVAILABLE = "unavailable"  # down, slow, an unexpected answer: try again later
    RATE_LIMITED = "rate limited"  # the platform asked us to slow down: other calls would hit it too
    HELD_BACK = "held back"  # not called: the platform had asked us to wait (not a failed attempt)
    GONE = "gone"  # the meeting or registrant no longer exists at the platform
    REFUSED = "refused"  # the platform said no, and trying again will not change that

    @property
    def temporary(self) -> bool:
        return self in (Problem.UNAVAILABLE, Problem.RATE_LIMITED, Problem.HELD_BACK)


class PlatformError(Exception):
    def __init__(self, message: str, *, problem: Problem = Problem.UNAVAILABLE,
                 retry_after: float | None = None):
        super().__init__(message)
        self.problem = problem
        self.retry_after = retry_after
        # When the problem concerns only some registrations of a call (Zoom's daily limit for one
        # address): their ids. The others in the same call may be tried again at once.
        self.registrations: frozenset[int] | None = None

    @property
    def temporary(self) -> bool:
        return self.problem.temporary


class Clock:
    """Seconds on a monotonic clock, and waiting them out: the provider's pacing and a batch's
    waits go by it. Tests put in one they move by hand (tests/video_kit.py: FakeClock)."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VideoProvider(ABC):
    name: str = ""
    clock: Clock = Clock()
    # Whether each attendee gets a link of their own (Zoom, Jitsi) or the shared meeting link
    # (Teams). The portal shows this to organisers.
    personal_links: bool = True
    # How many attendees one add call may carry.
    batch_size: int = 1
    # Links carry the seminar's time (Jitsi JWTs expire): issue them again after a reschedule.
    links_follow_schedule: bool = False

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

    def attendance(self, seminar: Seminar) -> list[Attendance]:
        """Who joined and left, when the platform reports it."""
        return []

    # -- reconciling with the platform (optional; the defaults suit a platform with no state)

    def find_meeting(self, seminar: Seminar) -> Meeting | None:
        """A meeting an earlier attempt created although its answer never reached us."""
        return None

    def meeting_matches(self, seminar: Seminar) -> bool:
        """Whether the platform's meeting still has our details; PlatformError(gone) if deleted."""
        return True

    def registrants(self, seminar: Seminar) -> list[Registrant] | None:
        """The platform's list of registrants, or None for a platform that keeps no list."""
        return None

    def cancel_registrants(self, seminar: Seminar, registrant_ids: list[str], *, deny: bool = False) -> None:
        """Take people off the platform's list (deny: they were never ours)."""

    def forget_registrant(self, seminar: Seminar, registrant_id: str) -> None:
        """Remove what the platform keeps about one attendee (the privacy purge)."""

    def host_link(self, seminar: Seminar) -> str | None:
        """The link a host starts the meeting with, as valid now (Zoom's expires after ~2 h)."""
        return seminar.meeting_host_url

    def close(self) -> None:
        """Let go of connections (called when a batch of jobs is done)."""


def platform_meeting_id(seminar: Seminar) -> str | None:
    """The platform's own id of the seminar's meeting."""
    return seminar.meeting_ref or seminar.meeting_id


def stored_meeting_id(meeting_id: str) -> tuple[str, str | None]:
    """(meeting_id, meeting_ref) as stored on the seminar: ids longer than the column get a short
    digest in meeting_id and the full id in meeting_ref."""
    if len(meeting_id) <= 64:
        return meeting_id, None
    return "sha256:" + hashlib.sha256(meeting_id.encode()).hexdigest()[:48], meeting_id
