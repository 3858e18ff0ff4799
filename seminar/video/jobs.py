"""The video family of jobs: meetings and attendees at the platform, run by the worker.

Handlers call the platform and write nothing themselves: what follows from an answer (a meeting
id, a join link, the seat mail) goes in `Done.apply`, which runs in the transaction that records
the job as done. Platform failures become retries (`PlatformError.temporary`) or failures, and
the seminar is flagged for organisers (`Seminar.platform_error`) until the next success.
"""
from __future__ import annotations

import logging
import random
import time
from collections import defaultdict

from flask import current_app
from sqlalchemy import select, update

from ..database import lock, write_transaction
from ..extensions import db
from ..jobs import kinds
from ..jobs.outcome import Defer, Done, Fail, Retry
from ..jobs.runner import Recorder
from ..models import LIVE_STATES, Job, JobState, Registration, RegistrationStatus, Seminar
from ..timeutil import utcnow
from . import get_provider
from .base import AttendeeLink, PlatformError, VideoProvider, stored_meeting_id

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


def translate(exc: PlatformError) -> Exception:
    if exc.throttled:
        return Defer(f"platform: {exc}", after=delay_for(exc) or 1.0)
    if exc.temporary:
        # After a 429 the rest of the batch would only hit the same limit: hand it back.
        return Retry(f"platform: {exc}", after=delay_for(exc), release_rest=exc.slow_down)
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
        if exc.gone:
            return remade(seminar_id, meeting_id)
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
    except PlatformError as exc:
        if not exc.gone:
            raise
        return "meeting was already gone at the platform"
    return None


def remade(seminar_id: int, meeting_id: str | None) -> Done:
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
            if not exc.gone:
                raise

    def forget_link() -> None:
        reg.join_url = None

    return Done(apply=forget_link)


def _still_to_add(jobs: list[Job], seminar: Seminar, outcome: Recorder) -> list[Job]:
    """The jobs whose attendee still needs adding; the others are recorded as done."""
    waiting = []
    for job in jobs:
        reg = job.registration
        if reg is None or reg.status != RegistrationStatus.CONFIRMED or seminar.is_cancelled:
            outcome.done(job, "no longer needed")
        elif reg.join_url:  # added before (a retried batch): only make sure the mail is queued
            outcome.done(job, Done(apply=lambda reg_id=job.registration_id, mail=_seat_mail(job):
                                   _queue_seat_mail(db.session.get(Registration, reg_id), mail)))
        else:
            waiting.append(job)
    return waiting


def short_wait(exc: PlatformError, retried: bool) -> float | None:
    """How long to wait before making the same call again within this batch, or None when the
    jobs should go back to the queue: a rate limit's wait of a second or two (VIDEO_SHORT_WAIT),
    and one quick second try after a hiccup (a 5xx, a dropped connection). Handing jobs back and
    claiming them again costs more than such a wait, and a rate-limited platform is best served by
    calls that each carry as many attendees as they can."""
    limit = current_app.config["VIDEO_SHORT_WAIT"]
    if exc.gone or exc.only or not exc.temporary:
        return None
    if exc.throttled or exc.slow_down:
        return exc.retry_after if exc.retry_after is not None and exc.retry_after <= limit else None
    if exc.retry_after is None and not retried and limit > 0:
        return min(1.0, limit)
    return None


def add_attendees(jobs: list[Job], recorder: Recorder) -> None:
    """ADD_ATTENDEE's batch runner: each seminar's attendees in calls as large as the platform
    allows."""
    providers = Providers()
    try:
        by_seminar: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            by_seminar[job.seminar_id].append(job)
        for seminar_jobs in by_seminar.values():
            _add_for_seminar(seminar_jobs, recorder, providers)
    finally:
        providers.close()


def _add_for_seminar(jobs: list[Job], outcome: Recorder, providers: Providers) -> None:
    """Add confirmed attendees in batches as large as the platform allows, then queue each one's
    seat mail in the same transaction that stores their link."""
    seminar = jobs[0].seminar
    waiting = _still_to_add(jobs, seminar, outcome)
    if not waiting:
        return
    if not seminar.meeting_id:
        # Soon when its creation is queued; else (it gave up) a new try comes with the nightly
        # pass, and a meeting once made brings these forward (see create_meeting).
        creating = db.session.scalar(select(Job.id).where(
            Job.seminar_id == seminar.id, Job.kind == kinds.CREATE_MEETING.name,
            Job.state.in_(LIVE_STATES)).limit(1))
        outcome.release(waiting, "waiting for the meeting to be created", 5.0 if creating else 3600.0)
        return
    seminar_id, meeting_id = seminar.id, seminar.meeting_id
    provider = providers.for_seminar(seminar)
    size = provider.batch_size
    # While the platform takes them, this batch goes on with more due attendees of the seminar
    # (claimed as it goes) for up to VIDEO_WAIT_BUDGET seconds, waiting out the platform's short
    # waits: every call carries as many attendees as it can, and a rate-limited platform is
    # called again the moment it allows. What a call achieved is recorded right after the next
    # call was made (or at the end), so recording never delays that next call.
    deadline = outcome.began + current_app.config["VIDEO_WAIT_BUDGET"]  # for the whole batch
    taken = None
    succeeded = retried = False

    def record_taken(then=None) -> None:
        """Record what the previous call achieved; `then`: what the call just made achieved."""
        nonlocal taken
        previous, taken = taken, then
        _record_taken(previous, outcome)

    try:
        while True:
            if len(waiting) < size and time.monotonic() < deadline:
                more = outcome.claim_more(kinds.ADD_ATTENDEE.name, seminar_id, size - len(waiting))
                waiting += _still_to_add(more, db.session.get(Seminar, seminar_id), outcome)
            if not waiting:
                return
            batch, rest = waiting[:size], waiting[size:]
            try:
                links = provider.add_attendees(db.session.get(Seminar, seminar_id),
                                               [job.registration for job in batch])
            except PlatformError as exc:
                wait = short_wait(exc, retried)
                ready_at = time.monotonic() + (wait or 0.0)
                record_taken()
                if wait is not None and ready_at <= deadline:
                    log.info("seminar %s: %s; the same %s attendees again in %.1f s",
                             seminar_id, exc, len(batch), wait)
                    time.sleep(max(0.0, ready_at - time.monotonic()))
                    retried = retried or not (exc.throttled or exc.slow_down)
                    continue
                succeeded = False  # flagged for organisers by _not_added (unless only throttled)
                if _not_added(exc, batch, rest, outcome, seminar_id, meeting_id):
                    return
            else:
                succeeded = True
                record_taken(([(job, job.registration_id, _seat_mail(job)) for job in batch],
                              links, meeting_id))
            waiting, retried = rest, False
    finally:
        record_taken()
        if succeeded:  # the last call went through: any problem flagged earlier is over
            seminar = db.session.get(Seminar, seminar_id)
            if seminar.platform_error and seminar.meeting_id:
                note_platform_problem(seminar_id, None)


def _record_taken(taken: tuple[list, dict[int, AttendeeLink], str] | None, outcome: Recorder) -> None:
    """Record what one call achieved: each added attendee's link and seat mail, in one
    transaction; anyone the platform answered no link for is tried again."""
    if taken is None:
        return
    answered, links, meeting_id = taken
    outcome.done_together([
        (job, Done(apply=lambda reg_id=reg_id, mail=mail: _store_link(reg_id, links[reg_id], mail, meeting_id)))
        for job, reg_id, mail in answered if reg_id in links])
    for job, reg_id, _ in answered:
        if reg_id not in links:
            outcome.retry(job, "platform returned no link for this attendee")


def _not_added(exc: PlatformError, batch: list[Job], rest: list[Job], outcome: Recorder,
               seminar_id: int, meeting_id: str) -> bool:
    """Record a batch the platform did not take. True when the rest should not be tried now."""
    if exc.gone:
        # The meeting was deleted at the platform: a new one is made, and everyone confirmed
        # (these people too) is added to it by jobs of their own, queued once these are recorded
        # as done (an intent's key is taken while its job is claimed).
        jobs = batch + rest
        outcome.done_together([(job, Done(note=REMADE)) for job in jobs[:-1]]
                              + [(jobs[-1], remade(seminar_id, meeting_id))])
        return True
    if not exc.throttled:
        note_platform_problem(seminar_id, str(exc))
    if exc.only:
        # One address hit a limit of its own: it waits, the others go again at once.
        for job in batch:
            if job.registration_id in exc.only:
                # A wait for this one address (e.g. until tomorrow): the others go on meanwhile.
                outcome.retry(job, f"platform: {exc}", delay_for(exc), pause=False)
            else:
                outcome.release([job], f"not added: {exc}", 0.0)
        return False
    if exc.throttled:
        outcome.release(batch + rest, f"not tried: {exc}", delay_for(exc) or 1.0)
        return True
    for job in batch:
        if exc.temporary:
            outcome.retry(job, f"platform: {exc}", delay_for(exc))
        else:
            outcome.failed(job, f"platform: {exc}")
    if exc.temporary:  # the platform asked us to slow down or is down: stop for now
        outcome.release(rest, f"not tried: {exc}", delay_for(exc) or 30.0)
        return True
    return False


def _store_link(reg_id: int, link: AttendeeLink, mail: str, meeting_id: str) -> None:
    reg = lock(Registration, reg_id)  # a cancellation at this moment is seen
    if reg.seminar.meeting_id != meeting_id:
        # The meeting was made anew meanwhile (recreate_meeting): this link leads to the old one.
        # A job of its own adds this attendee to the new one (queued here when recreate_meeting
        # found this very job still running).
        if reg.status == RegistrationStatus.CONFIRMED:
            kinds.ADD_ATTENDEE.enqueue(registration=reg, mail=mail)
        return
    reg.join_url = link.join_url
    reg.platform_registrant_id = link.registrant_id
    if reg.status != RegistrationStatus.CONFIRMED:
        # Cancelled while we were adding them: take them off the platform's list again.
        kinds.REMOVE_ATTENDEE.enqueue(registration=reg)
        return
    _queue_seat_mail(reg, mail)


def _store_links(links: dict[int, AttendeeLink]) -> None:
    for reg_id, link in links.items():
        reg = db.session.get(Registration, reg_id)
        if reg is not None and reg.status == RegistrationStatus.CONFIRMED:
            reg.join_url = link.join_url
            reg.platform_registrant_id = link.registrant_id or reg.platform_registrant_id


def _seat_mail(job: Job) -> str:
    """The seat mail that follows adding this attendee, as the job names it (kinds.SEAT_MAILS)."""
    return job.payload.get("mail", kinds.SEAT_CONFIRMED.short_name)


def _queue_seat_mail(reg: Registration, mail: str) -> None:
    kinds.SEAT_MAILS[mail].enqueue(registration=reg, calendar="REQUEST")


def pending_adds(seminar_id: int) -> set[int]:
    """Registrations whose add job is still queued or running."""
    return set(db.session.scalars(select(Job.registration_id).where(
        Job.seminar_id == seminar_id, Job.kind == kinds.ADD_ATTENDEE.name,
        Job.state.in_(LIVE_STATES))))


# ---------------------------------------------------------------- the batch runner

def run_platform_calls(jobs: list[Job], recorder: Recorder) -> None:
    """The batch runner of the platform kinds that make one call per job (kinds.py names each
    one's handler): one provider per platform for the whole batch."""
    providers = Providers()

    def run(job: Job):
        try:
            return kinds.get(job.kind).handle()(job, providers)
        except PlatformError as exc:
            if not exc.throttled:
                note_platform_problem(job.seminar_id, str(exc))
            raise translate(exc) from exc

    try:
        recorder.run_each(jobs, run)
    finally:
        providers.close()
