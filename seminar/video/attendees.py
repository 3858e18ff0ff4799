"""Adding confirmed attendees at the platform (ADD_ATTENDEE's batch runner), then their seat mail.

Each seminar's attendees go in calls as large as the platform allows (Zoom: 30). While the platform
takes them, the batch goes on with more due attendees of that seminar, claimed as it goes, for up
to VIDEO_WAIT_BUDGET seconds, waiting out the platform's short waits: every call carries as many
attendees as it can, and a rate-limited platform is called again the moment it allows. What a call
achieved is recorded right after the next call was made (or at the end), so recording never
delays that next call; each attendee's link and seat mail land in the transaction that records
their job as done.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..jobs import kinds, outbox
from ..jobs.outcome import Done
from ..jobs.recorder import Recorder
from ..models import LIVE_STATES, Job, Registration, RegistrationStatus, Seminar
from .base import AttendeeLink, PlatformError, Problem, VideoProvider
from .jobs import REMADE, Providers, delay_for, meeting_made_anew, note_platform_problem

log = logging.getLogger("seminar.video")

FILL_SECONDS = 0.5  # how long a call may wait for people still confirming, to go out fuller
FILL_PAUSE = 0.1  # between two such claims: a few confirmations come in meanwhile, even on a busy machine


def add_attendees(jobs: list[Job], recorder: Recorder) -> None:
    """ADD_ATTENDEE's batch runner: each seminar's attendees in turn."""
    providers = Providers()
    try:
        by_seminar: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            by_seminar[job.seminar_id].append(job)
        for seminar_jobs in by_seminar.values():
            _add_for_seminar(seminar_jobs, recorder, providers)
    finally:
        providers.close()


def _add_for_seminar(jobs: list[Job], recorder: Recorder, providers: Providers) -> None:
    seminar = jobs[0].seminar
    waiting = still_to_add(jobs, seminar, recorder)
    if not waiting:
        return
    if not seminar.meeting_id:
        # Soon when its creation is queued; else (it gave up) a new try comes with the nightly
        # pass, and a meeting once made brings these forward (see create_meeting).
        creating = db.session.scalar(select(Job.id).where(
            Job.seminar_id == seminar.id, Job.kind == kinds.CREATE_MEETING.name,
            Job.state.in_(LIVE_STATES)).limit(1))
        recorder.release(waiting, "waiting for the meeting to be created", 5.0 if creating else 3600.0)
        return
    _SeminarCalls(recorder, providers.for_seminar(seminar), seminar.id, seminar.meeting_id).run(waiting)


def still_to_add(jobs: list[Job], seminar: Seminar, recorder: Recorder) -> list[Job]:
    """The jobs whose attendee still needs adding; the others are recorded as done."""
    waiting = []
    for job in jobs:
        reg = job.registration
        if reg is None or reg.status != RegistrationStatus.CONFIRMED or seminar.is_cancelled:
            recorder.done(job, "no longer needed")
        elif reg.join_url:  # added before (a retried batch): only make sure the mail is queued
            recorder.done(job, Done(apply=lambda reg_id=job.registration_id, mail=seat_mail_of(job):
                                    queue_seat_mail(db.session.get(Registration, reg_id), mail)))
        else:
            waiting.append(job)
    return waiting


class _CallMade:
    """What one add call achieved: the jobs it carried (with each one's seat mail) and the links
    the platform answered, for the meeting it was made at."""

    def __init__(self, jobs: list[Job], links: dict[int, AttendeeLink], meeting_id: str):
        self.carried = [(job, job.registration_id, seat_mail_of(job)) for job in jobs]
        self.links, self.meeting_id = links, meeting_id

    def record(self, recorder: Recorder) -> None:
        """Each added attendee's link and seat mail, in one transaction; anyone the platform
        answered no link for is tried again. The first to be stored locks every added attendee's
        row and looks up every seat mail's key, in two queries instead of two or three each (the
        worker records one call while the platform's next slot comes: on a busy machine, a query
        per attendee made the recording outlast the slot)."""
        added = [(job, reg_id, mail) for job, reg_id, mail in self.carried if reg_id in self.links]
        locked: dict[int, Registration] | None = None  # loaded by the first `store`

        def store(reg_id: int, mail: str) -> None:
            nonlocal locked
            if locked is None:
                locked = lock_registrations([r for _, r, _ in added])
                outbox.look_up(kinds.SEAT_MAILS[m].key_for(registration_id=r) for _, r, m in added)
            store_link(locked.get(reg_id), self.links[reg_id], mail, self.meeting_id)

        recorder.done_together([(job, Done(apply=lambda reg_id=reg_id, mail=mail: store(reg_id, mail)))
                                for job, reg_id, mail in added])
        for job, reg_id, _ in self.carried:
            if reg_id not in self.links:
                recorder.retry(job, "platform returned no link for this attendee")


class _SeminarCalls:
    """One seminar's add calls within a batch."""

    def __init__(self, recorder: Recorder, provider: VideoProvider, seminar_id: int, meeting_id: str):
        self.recorder, self.provider = recorder, provider
        self.seminar_id, self.meeting_id = seminar_id, meeting_id
        self.clock = provider.clock
        # What is left of the whole batch's VIDEO_WAIT_BUDGET, on the provider's clock. (What the
        # batch has spent so far is real time: with a test's clock that is a moment or two more.)
        spent = time.monotonic() - recorder.batch.began
        self.deadline = self.clock.now() + current_app.config["VIDEO_WAIT_BUDGET"] - spent
        self.unrecorded: _CallMade | None = None  # the previous call, recorded once the next is made
        self.last_succeeded = False
        self.taken_at: float | None = None  # when the platform last took a call of ours

    def run(self, waiting: list[Job]) -> None:
        size = self.provider.batch_size
        tried_again = False  # the call now due is a quick second try after a hiccup
        try:
            while True:
                waiting += self.take_along(size - len(waiting))
                if not waiting:
                    return
                call, rest = waiting[:size], waiting[size:]
                try:
                    links = self.provider.add_attendees(db.session.get(Seminar, self.seminar_id),
                                                        [job.registration for job in call])
                except PlatformError as exc:
                    wait = short_wait(exc, tried_again)
                    ready_at = self.ready_at(exc, wait)
                    self.record_previous()
                    if wait is not None and ready_at <= self.deadline:
                        log.info("seminar %s: %s; the same %s attendees again in %.1f s",
                                 self.seminar_id, exc, len(call), max(0.0, ready_at - self.clock.now()))
                        self.clock.sleep(ready_at - self.clock.now())
                        # One quick second try per hiccup; a rate limit's answer in between shows
                        # the platform is there, so a later hiccup gets its own second try.
                        tried_again = exc.problem not in (Problem.HELD_BACK, Problem.RATE_LIMITED)
                        continue
                    self.last_succeeded = False  # flagged for organisers by not_added (unless held back)
                    if wait is not None:  # only the batch's budget is spent
                        handed_back(exc, call, rest, self.recorder, max(0.0, ready_at - self.clock.now()))
                        return
                    if not_added(exc, call, rest, self.recorder, self.seminar_id, self.meeting_id):
                        return
                else:
                    self.last_succeeded, self.taken_at = True, self.clock.now()
                    self.record_previous(then=_CallMade(call, links, self.meeting_id))
                waiting, tried_again = rest, False
        finally:
            self.record_previous()
            if self.last_succeeded:  # the last call went through: any problem flagged earlier is over
                seminar = db.session.get(Seminar, self.seminar_id)
                if seminar.platform_error and seminar.meeting_id:
                    note_platform_problem(self.seminar_id, None)

    def take_along(self, room: int) -> list[Job]:
        """More due attendees of the seminar for the call about to be made, claimed into the batch
        while there is room in it (and budget left): while people keep confirming (each claim found
        some), again after FILL_PAUSE, for up to FILL_SECONDS. A burst of confirmations then goes
        out in full calls from the first one, where a call made with the first few would take a slot
        of a rate-limited platform for a fraction of what it takes; one person alone goes at once."""
        taken: list[Job] = []
        until = min(self.deadline, self.clock.now() + FILL_SECONDS)
        while len(taken) < room and self.clock.now() < until:
            more = self.recorder.batch.claim_more(kinds.ADD_ATTENDEE.name, self.seminar_id, room - len(taken))
            taken += still_to_add(more, db.session.get(Seminar, self.seminar_id), self.recorder)
            if not more or len(taken) >= room:
                break
            self.clock.sleep(FILL_PAUSE)  # people are confirming right now: a moment for a few more
        return taken

    def ready_at(self, exc: PlatformError, wait: float | None) -> float:
        """When the same call may go again after `exc` and its short wait (now, when none).

        The platform's own wait counts from when it was asked (the provider already counts a 429
        to a call made too soon from the call taken before it). A hiccup's quick second try goes
        in the platform's next slot, `wait` after the call it took last: a hiccup to a call that
        came too soon costs no more than the 429 it would have had, and one to a call in its slot
        costs that slot, not a slot and the time since the call taken before."""
        now = self.clock.now()
        if wait is None:
            return now
        if exc.retry_after is None and self.taken_at is not None:
            return max(now, self.taken_at + wait)
        return now + wait

    def record_previous(self, then: _CallMade | None = None) -> None:
        """Record what the previous call achieved; `then`: the call just made, recorded next time."""
        previous, self.unrecorded = self.unrecorded, then
        if previous is not None:
            previous.record(self.recorder)


def short_wait(exc: PlatformError, tried_again: bool) -> float | None:
    """How long to wait before making the same call again within this batch, or None when the
    jobs should go back to the queue: a rate limit's wait of a second or two (VIDEO_SHORT_WAIT),
    and one quick second try after a hiccup (a 5xx, a dropped connection). Handing jobs back and
    claiming them again costs more than such a wait, and a rate-limited platform is best served by
    calls that each carry as many attendees as they can."""
    limit = current_app.config["VIDEO_SHORT_WAIT"]
    if exc.registrations or not exc.temporary:
        return None
    if exc.problem in (Problem.HELD_BACK, Problem.RATE_LIMITED):
        return exc.retry_after if exc.retry_after is not None and exc.retry_after <= limit else None
    if exc.retry_after is None and not tried_again and limit > 0:
        return min(1.0, limit)
    return None


def handed_back(exc: PlatformError, call: list[Job], rest: list[Job], recorder: Recorder, after: float) -> None:
    """A short wait stands but the batch's budget is spent: everyone goes back to the queue for
    that wait, and no longer. A hiccup's quick second try comes then too, not after the kind's
    backoff: one failed call costs the platform's next call, never a retry interval."""
    if exc.problem is Problem.HELD_BACK:  # not tried: not a failed attempt
        recorder.release(call + rest, f"not tried: {exc}", after)
        return
    for job in call:
        recorder.retry(job, f"platform: {exc}", after)
    recorder.release(rest, f"not tried: {exc}", after)


def not_added(exc: PlatformError, call: list[Job], rest: list[Job], recorder: Recorder,
              seminar_id: int, meeting_id: str) -> bool:
    """Record a call the platform did not take. True when the rest should not be tried now."""
    if exc.problem is Problem.GONE:
        # The meeting was deleted at the platform: a new one is made, and everyone confirmed
        # (these people too) is added to it by jobs of their own, queued once these are recorded
        # as done (an intent's key is taken while its job is claimed).
        jobs = call + rest
        recorder.done_together([(job, Done(note=REMADE)) for job in jobs[:-1]]
                               + [(jobs[-1], meeting_made_anew(seminar_id, meeting_id))])
        return True
    if exc.problem is not Problem.HELD_BACK:
        note_platform_problem(seminar_id, str(exc))
    if exc.registrations:
        # One address hit a limit of its own (e.g. until tomorrow): it waits, the others go again
        # at once.
        for job in call:
            if job.registration_id in exc.registrations:
                recorder.retry(job, f"platform: {exc}", delay_for(exc), pause=False)
            else:
                recorder.release([job], f"not added: {exc}", 0.0)
        return False
    if exc.problem is Problem.HELD_BACK:
        recorder.release(call + rest, f"not tried: {exc}", delay_for(exc) or 1.0)
        return True
    for job in call:
        if exc.temporary:
            recorder.retry(job, f"platform: {exc}", delay_for(exc))
        else:
            recorder.failed(job, f"platform: {exc}")
    if exc.temporary:  # the platform asked us to slow down or is down: stop for now
        recorder.release(rest, f"not tried: {exc}", delay_for(exc) or 30.0)
        return True
    return False


def lock_registrations(ids: list[int]) -> dict[int, Registration]:
    """Registrations loaded for update, in id order (row locks on PostgreSQL, taken in one order
    by everyone who locks several; the IMMEDIATE transaction covers SQLite): a cancellation at
    this moment is seen."""
    rows = db.session.scalars(select(Registration).where(Registration.id.in_(ids)).order_by(Registration.id)
                              .with_for_update().execution_options(populate_existing=True))
    return {reg.id: reg for reg in rows}


def store_link(reg: Registration | None, link: AttendeeLink, mail: str, meeting_id: str) -> None:
    """Store an added attendee's link (`reg` locked by the caller) and queue their seat mail."""
    if reg is None:
        return  # the registration is gone: nobody to mail
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
    queue_seat_mail(reg, mail)


def seat_mail_of(job: Job) -> str:
    """The seat mail that follows adding this attendee, as the job names it (kinds.SEAT_MAILS)."""
    return job.payload.get("mail", kinds.SEAT_CONFIRMED.short_name)


def queue_seat_mail(reg: Registration, mail: str) -> None:
    kinds.SEAT_MAILS[mail].enqueue(registration=reg, calendar="REQUEST")


def pending_adds(seminar_id: int) -> set[int]:
    """Registrations whose add job is still queued or running."""
    return set(db.session.scalars(select(Job.registration_id).where(
        Job.seminar_id == seminar_id, Job.kind == kinds.ADD_ATTENDEE.name,
        Job.state.in_(LIVE_STATES))))
