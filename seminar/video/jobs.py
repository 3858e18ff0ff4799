"""The video family of jobs: meetings and attendees at the platform, run by the worker."""
from __future__ import annotations

import logging
from collections import defaultdict

from ..database import write_transaction
from ..extensions import db
from ..models import Job, Seminar
from ..notify.outbox import enqueue_mail
from ..notify.worker import Done, Fail, Outcome, Retry, handler
from . import get_provider
from .base import PlatformError, VideoProvider

log = logging.getLogger("seminar.video")


def _note_platform_problem(seminar_id: int, message: str | None) -> None:
    """Flag (or clear) a platform problem on the seminar for organisers, in its own transaction."""
    seminar = db.session.get(Seminar, seminar_id)
    if seminar is None or seminar.platform_error == message:
        return
    with write_transaction():
        db.session.get(Seminar, seminar_id).platform_error = message


def _translate(exc: PlatformError) -> Exception:
    if exc.temporary:
        return Retry(f"platform: {exc}", after=exc.retry_after)
    return Fail(f"platform: {exc}")


def _provider_for(seminar: Seminar) -> VideoProvider:
    # A seminar stays with the platform its meeting was created at, even if the setting changes.
    return get_provider(seminar.video_provider)


def create_meeting(job: Job) -> Done | str:
    seminar = job.seminar
    if seminar.is_cancelled:
        return "not created: seminar cancelled"
    if seminar.meeting_id:
        return "meeting exists"
    provider = get_provider()
    meeting = provider.create_meeting(seminar)

    def store() -> None:
        seminar.video_provider = provider.name
        seminar.meeting_id = meeting.meeting_id
        seminar.meeting_join_url = meeting.join_url
        seminar.meeting_host_url = meeting.host_url
        seminar.platform_error = None

    return Done(apply=store)


def update_meeting(job: Job) -> str | None:
    seminar = job.seminar
    if not seminar.meeting_id:
        return "no meeting yet: it is created with the current details"
    _provider_for(seminar).update_meeting(seminar)
    return None


def delete_meeting(job: Job) -> str | None:
    seminar = job.seminar
    if not seminar.meeting_id:
        return "no meeting to delete"
    try:
        _provider_for(seminar).delete_meeting(seminar)
    except PlatformError as exc:
        if not exc.gone:
            raise
    return None


def remove_attendee(job: Job) -> Done | str:
    reg, seminar = job.registration, job.seminar
    if reg is None or not seminar.meeting_id:
        return "nothing to remove"
    if reg.platform_registrant_id or reg.join_url:
        try:
            _provider_for(seminar).remove_attendee(seminar, reg)
        except PlatformError as exc:
            if not exc.gone:
                raise

    def forget_link() -> None:
        reg.join_url = None

    return Done(apply=forget_link)


SINGLE = {
    "video.create_meeting": create_meeting,
    "video.update_meeting": update_meeting,
    "video.delete_meeting": delete_meeting,
    "video.remove_attendee": remove_attendee,
}


def _run_single(job: Job) -> Done | str | None:
    try:
        return SINGLE[job.kind](job)
    except PlatformError as exc:
        _note_platform_problem(job.seminar_id, str(exc))
        raise _translate(exc) from exc


def add_attendees(jobs: list[Job], outcome: Outcome) -> None:
    """Add confirmed attendees in batches as large as the platform allows, then queue each one's
    seat mail in the same transaction that stores their link."""
    seminar = jobs[0].seminar
    waiting = []
    for job in jobs:
        reg = job.registration
        if reg is None or reg.status != "confirmed" or seminar.is_cancelled:
            outcome.done(job, "no longer needed")
        elif reg.join_url:  # added before (a retried batch): only make sure the mail is queued
            outcome.done(job, Done(apply=lambda job=job: _queue_seat_mail(job)))
        else:
            waiting.append(job)
    if not waiting:
        return
    if not seminar.meeting_id:
        outcome.release(waiting, "waiting for the meeting to be created", 5.0)
        return
    provider = _provider_for(seminar)
    for start in range(0, len(waiting), provider.batch_size):
        batch = waiting[start:start + provider.batch_size]
        try:
            links = provider.add_attendees(seminar, [job.registration for job in batch])
        except PlatformError as exc:
            _note_platform_problem(seminar.id, str(exc))
            for job in batch:
                if exc.temporary:
                    outcome.retry(job, f"platform: {exc}", exc.retry_after)
                else:
                    outcome.failed(job, f"platform: {exc}")
            if exc.temporary:  # the platform asked us to slow down or is down: stop for now
                outcome.release(waiting[start + len(batch):], f"not tried: {exc}", exc.retry_after or 30.0)
                return
            continue
        for job in batch:
            link = links.get(job.registration_id)
            if link is None:
                outcome.retry(job, "platform returned no link for this attendee")
                continue
            outcome.done(job, Done(apply=lambda job=job, link=link: _store_link(job, link)))
    if seminar.platform_error:
        _note_platform_problem(seminar.id, None)


def _store_link(job: Job, link) -> None:
    job.registration.join_url = link.join_url
    job.registration.platform_registrant_id = link.registrant_id
    _queue_seat_mail(job)


def _queue_seat_mail(job: Job) -> None:
    kind = job.payload.get("mail", "seat_confirmed")
    enqueue_mail(kind, job.registration, key=f"seat-mail:{job.registration_id}", invite="REQUEST")


@handler("video")
def run_video_jobs(jobs: list[Job], outcome: Outcome) -> None:
    adds: dict[int, list[Job]] = defaultdict(list)
    others = []
    for job in jobs:
        if job.kind == "video.add_attendee":
            adds[job.seminar_id].append(job)
        else:
            others.append(job)
    outcome.run_each(others, _run_single)
    for seminar_jobs in adds.values():
        add_attendees(seminar_jobs, outcome)
