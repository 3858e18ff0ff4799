"""Platform calls, one per job: meetings made, changed and deleted, attendees removed.

Handlers call the platform and write nothing themselves: what follows from an answer (a meeting
id, a join link, the seat mail) goes in `Done.apply`, which runs in the transaction that records
the job as done. Platform failures become retries or failures by their `Problem` (`as_outcome`),
and the seminar is flagged for organisers (`Seminar.platform_error`) until the next success.
Adding attendees, in calls of many at once, is in attendees.py.
"""
from __future__ import annotations

import logging
import random

from flask import current_app
from sqlalchemy import update

from ..database import lock, write_transaction
from ..extensions import db
from ..jobs import kinds
from ..jobs.outcome import Defer, Done, Fail, Retry
from ..jobs.recorder import Recorder
from ..models import Job, JobState, Registration, RegistrationStatus, Seminar
from ..timeutil import utcnow
from . import get_provider
from .base import AttendeeLink, PlatformError, Problem, VideoProvider, stored_meeting_id

log = logging.getLogger("seminar.video")


class Providers:
    """One provider per platform for a whole batch of jobs: one HTTP session, one token read."""

    def __init__(self) -> None:
        self._made: dict[str, VideoProvider] = {}

    def get(self, name: str | None = None) -> VideoProvider:
        name = (name or current_app.config["VIDEO_PROVIDER"]).lower()
        if name not in self._made:
            try:
                self._made[name] = get_provider(name)
            except ValueError as exc:  # a setting to fix: flag it, try again later
                raise PlatformError(str(exc), retry_after=600) from exc
        return self._made[name]

    def for_seminar(self, seminar: Seminar) -> VideoProvider:
        # A seminar stays with the platform its meeting was created at, even if the setting changes.
        return self.get(seminar.video_provider)

    def close(self) -> None:
        for provider in self._made.values():
            provider.close()


def note_platform_problem(seminar_id: int, message: str | None) -> None:
    """Flag (or clear) a platform problem on the seminar for organisers, in its own transaction."""
    seminar = db.session.get(Seminar, seminar_id)
    if seminar is None or seminar.platform_error == message:
        return
    with write_transaction():
        db.session.get(Seminar, seminar_id).platform_error = message


def delay_for(exc: PlatformError) -> float | None:
    """The platform's wish plus a little jitter, so many jobs do not all come back at once."""
    if exc.retry_after is None:
        return None  # the worker's exponential backoff (with jitter)
    return exc.retry_after + random.uniform(0, min(60.0, max(1.0, exc.retry_after * 0.1)))


def as_outcome(exc: PlatformError) -> Exception:
    """What the runner does about a platform's problem with one job."""
    if exc.problem is Problem.HELD_BACK:
        return Defer(f"platform: {exc}", after=delay_for(exc) or 1.0)
    if exc.temporary:
        # After a 429 the rest of the batch would only hit the same limit: hand it back.
        return Retry(f"platform: {exc}", after=delay_for(exc), release_rest=exc.problem is Problem.RATE_LIMITED)
    return Fail(f"platform: {exc}")


# ---------------------------------------------------------------- meetings

def create_meeting(job: Job, providers: Providers) -> Done | str:
    seminar = job.seminar
    if seminar.is_cancelled:
        return "not created: seminar cancelled"
    if seminar.meeting_id:
        return "meeting exists"
    provider = providers.get()
    # An earlier attempt may have created the meeting although its answer never reached us.
    meeting = provider.find_meeting(seminar) if job.attempts > 1 else None
    meeting = meeting or provider.create_meeting(seminar)
    meeting_id, meeting_ref = stored_meeting_id(meeting.meeting_id)
    seminar_id = seminar.id

    def store() -> None:
        current = lock(Seminar, seminar_id)
        current.video_provider = provider.name
        current.meeting_id, current.meeting_ref = meeting_id, meeting_ref
        current.meeting_join_url = meeting.join_url
        current.meeting_host_url = meeting.host_url
        current.platform_error = None
        if current.is_cancelled:
            # Cancelled while we were creating it: the delete that ran found nothing to delete.
            kinds.DELETE_MEETING.enqueue(seminar=current)
            return
        # Attendees waiting for the meeting go now.
        db.session.execute(
            update(Job).where(Job.seminar_id == seminar_id, Job.kind == kinds.ADD_ATTENDEE.name,
                              Job.state == JobState.PENDING, Job.due_at > utcnow())
            .values(due_at=utcnow()).execution_options(synchronize_session=False))

    return Done(apply=store)


def update_meeting(job: Job, providers: Providers) -> Done | str | None:
    seminar = job.seminar
    if not seminar.meeting_id:
        return "no meeting yet: it is created with the current details"
    if seminar.is_cancelled:
        return "seminar cancelled"
    provider = providers.for_seminar(seminar)
    seminar_id, meeting_id = seminar.id, seminar.meeting_id
    try:
        provider.update_meeting(seminar)
    except PlatformError as exc:
        if exc.problem is Problem.GONE:
            return meeting_made_anew(seminar_id, meeting_id)
        raise
    if provider.links_follow_schedule:
        holders = [reg for reg in seminar.attendees() if reg.join_url]
        links = provider.add_attendees(seminar, holders)
        return Done(apply=lambda: _store_links(links))
    return None


def delete_meeting(job: Job, providers: Providers) -> str | None:
    seminar = job.seminar
    if not seminar.meeting_id:
        return "no meeting to delete"
    try:
        providers.for_seminar(seminar).delete_meeting(seminar)
        return None
    except PlatformError as exc:
        if exc.problem is Problem.GONE:
            return "meeting was already gone at the platform"
        raise


def meeting_made_anew(seminar_id: int, meeting_id: str | None) -> Done:
    """The outcome of finding the meeting deleted at the platform: it is made anew when the job
    is recorded (recreate_meeting), and everyone confirmed is added to the new one."""
    return Done(note=REMADE, apply=lambda: recreate_meeting(seminar_id, meeting_id))


REMADE = "meeting was gone at the platform: made anew"


def recreate_meeting(seminar_id: int, old_meeting_id: str | None) -> None:
    """The platform's meeting was deleted behind our back: make a new one and add everyone again.

    Call inside a write transaction. Mailed join links keep working: they lead through our site
    to whatever link the attendee has, so nobody needs a new mail.
    """
    seminar = lock(Seminar, seminar_id)
    if seminar.meeting_id != old_meeting_id or seminar.is_cancelled:
        return  # already handled, or nothing to make
    log.warning("seminar %s: meeting %s was deleted at the platform; making a new one",
                seminar_id, old_meeting_id)
    seminar.meeting_id = seminar.meeting_ref = None
    seminar.meeting_join_url = seminar.meeting_host_url = None
    seminar.platform_error = ("The meeting was deleted at the video platform outside this service; "
                              "a new one is being made and every attendee added again.")
    kinds.CREATE_MEETING.enqueue(seminar=seminar)
    for reg in seminar.attendees():
        reg.join_url = None
        reg.platform_registrant_id = None
        kinds.ADD_ATTENDEE.enqueue(registration=reg, mail=kinds.SEAT_CONFIRMED.short_name)


# ---------------------------------------------------------------- attendees

def remove_attendee(job: Job, providers: Providers) -> Done | str:
    reg, seminar = job.registration, job.seminar
    if reg is None or not seminar.meeting_id:
        return "nothing to remove"
    if reg.platform_registrant_id or reg.join_url:
        provider = providers.for_seminar(seminar)
        try:
            if reg.status == RegistrationStatus.PURGED and reg.platform_registrant_id:
                # The privacy purge: a cancelled registrant keeps name and address at the
                # platform, so the record itself goes.
                provider.forget_registrant(seminar, reg.platform_registrant_id)
            else:
                provider.remove_attendee(seminar, reg)
        except PlatformError as exc:
            if exc.problem is not Problem.GONE:
                raise

    def forget_link() -> None:
        reg.join_url = None

    return Done(apply=forget_link)


def _store_links(links: dict[int, AttendeeLink]) -> None:
    for reg_id, link in links.items():
        reg = db.session.get(Registration, reg_id)
        if reg is not None and reg.status == RegistrationStatus.CONFIRMED:
            reg.join_url = link.join_url
            reg.platform_registrant_id = link.registrant_id or reg.platform_registrant_id


# ---------------------------------------------------------------- the batch runner

def run_platform_calls(jobs: list[Job], recorder: Recorder) -> None:
    """The batch runner of the platform kinds that make one call per job (kinds.py names each
    one's handler): one provider per platform for the whole batch."""
    providers = Providers()

    def run(job: Job):
        try:
            return kinds.get(job.kind).handle()(job, providers)
        except PlatformError as exc:
            if exc.problem is not Problem.HELD_BACK:
                note_platform_problem(job.seminar_id, str(exc))
            raise as_outcome(exc) from exc

    try:
        recorder.run_each(jobs, run)
    finally:
        providers.close()
