"""The runner: claiming (interactive lane first, leases), batches that take more due work along and
wait out short waits, and waits the other side asks for (kept between batches by a long-running
worker). Batching is driven through the Zoom stand-in, whose calls show how work was grouped."""
from __future__ import annotations

from datetime import timedelta

import pytest

from seminar.extensions import db
from seminar.jobs import kinds
from seminar.jobs.runner import Batch, Pauses, claim, run_batch
from seminar.models import Job, JobState, Lane, Registration
from seminar.registration.service import SignUpData, confirm, sign_up
from seminar.timeutil import utcnow

from .helpers import jobs, registrations, work
from .video_kit import app_config, clock, zoom, zoom_stays_clean  # noqa: F401  (fixtures)
from .video_kit import (added_addresses, approved, calls, confirm_many, fresh, meeting_id, seat_mails,
                        signed_up_after_three_adds_today)


def _one_registration(make_seminar) -> Registration:
    seminar = make_seminar()
    return sign_up(seminar.id, SignUpData(name="Anouk", email="anouk@kdv.example", organisation="KDV",
                                          location_type="kdv"))


# ---------------------------------------------------------------- claiming

def test_interactive_work_is_claimed_first(app, make_seminar):
    reg = _one_registration(make_seminar)  # its confirmation mail: interactive, due now
    db.session.execute(db.delete(Job).where(Job.kind != kinds.CONFIRM_ADDRESS.name))  # the meeting's
    early = utcnow() - timedelta(hours=1)
    for hours in (1, 2, 3):
        kinds.REMINDER.enqueue(registration=reg, due_at=early, hours=hours)
    db.session.commit()
    jobs = claim("worker-a", limit=2)
    assert [job.kind for job in jobs] == [kinds.CONFIRM_ADDRESS.name, kinds.REMINDER.name]
    assert [job.lane for job in jobs] == [Lane.INTERACTIVE, Lane.BULK]


def test_a_claim_is_a_lease_taken_over_once_it_runs_out(app, make_seminar):
    _one_registration(make_seminar)
    db.session.execute(db.delete(Job).where(Job.kind != kinds.CONFIRM_ADDRESS.name))
    db.session.commit()
    [job] = claim("worker-a")
    assert claim("worker-b") == []  # held by worker-a
    lease = timedelta(seconds=app.config["WORKER_LEASE_SECONDS"])
    [again] = claim("worker-b", utcnow() + lease + timedelta(seconds=1))
    assert again.id == job.id and again.claimed_by == "worker-b" and again.attempts == 2


def test_a_job_of_a_kind_no_longer_declared_fails_visibly(app, make_seminar):
    reg = _one_registration(make_seminar)
    db.session.add(Job(kind="video.forget_attendee", registration=reg, seminar_id=reg.seminar_id,
                       lane=Lane.BULK, payload={}))
    db.session.commit()
    work()
    [job] = jobs("video.forget_attendee")
    assert job.state == JobState.FAILED and "no handler" in job.last_error


# ---------------------------------------------------------------- batches and waits

def test_a_wait_of_a_second_is_waited_out_within_the_batch(app, zoom, clock, make_seminar):
    seminar = make_seminar(capacity=50)
    work()
    confirm_many(seminar, 40)
    zoom.fail_next(1, status=429, retry_after=1, path_contains="/batch_registrants")
    work()

    statuses = [c.status for c in calls(zoom, "POST", "/batch_registrants")]
    assert statuses == [429, 200, 200]
    assert {j.state for j in jobs("video.add_attendee")} == {"done"}
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))


def test_a_long_wait_counts_from_when_it_was_asked(app, zoom, clock, make_seminar):
    """Short waits are waited out within the batch; a long one asked for later in the batch
    makes the jobs due that long after it was asked, not after the batch began."""
    seminar = make_seminar(capacity=20)
    work()
    confirm_many(seminar, 3)
    zoom.fail_next(4, status=429, retry_after=1, path_contains="/batch_registrants")
    zoom.fail_next(1, status=429, retry_after=30, path_contains="/batch_registrants")
    run_batch()  # four waits of a second, then one of 30 s: the batch took over 4 s
    asked = utcnow()  # a moment after the last 429

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [429] * 5
    assert all(job.due_at >= asked + timedelta(seconds=29.5) for job in jobs("video.add_attendee"))


def only_adds_queued(seminar, n: int) -> None:
    """`n` people confirmed; their add jobs are all that is queued (not their confirmation mails)."""
    confirm_many(seminar, n)
    db.session.execute(db.delete(Job).where(Job.kind != kinds.ADD_ATTENDEE.name))
    db.session.commit()


def test_people_still_confirming_go_out_in_a_full_call(app, zoom, clock, make_seminar, monkeypatch):
    """While people keep confirming (each claim finds a few more), the call about to be made takes
    them along until it is full, instead of going out with the first few: with Zoom taking one
    call a second, a call of 15 would cost as much as a call of 30."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 45)
    app.config["WORKER_BATCH_SIZE"] = 10
    claim_more = Batch.claim_more

    def confirming(batch, kind, seminar_id, limit):  # five more have confirmed at every claim
        return claim_more(batch, kind, seminar_id, min(limit, 5))

    monkeypatch.setattr(Batch, "claim_more", confirming)
    run_batch()

    assert [len(c.json["registrants"]) for c in calls(zoom, "POST", "/batch_registrants")] == [30, 15]
    # A moment between claims while each found some: three to fill the first call (10+5+5+5+5),
    # three while the last fifteen came in fives.
    assert clock.slept == [0.1] * 6
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))
    assert set(added_addresses(zoom).values()) == {1}


def database_takes(seconds: float, clock, monkeypatch) -> None:
    """Each claim of more work into a batch takes `seconds` on the test's clock (a busy database)."""
    claim_more = Batch.claim_more

    def busy_database(batch, *args, **kwargs):
        clock.move(seconds)
        return claim_more(batch, *args, **kwargs)

    monkeypatch.setattr(Batch, "claim_more", busy_database)


def test_a_call_made_too_soon_waits_from_the_call_the_platform_took(app, zoom, clock, make_seminar,
                                                                    monkeypatch):
    """Zoom takes one registrant call a second. The worker records a call and claims more work
    before its next call (0.4 s on a busy database), which comes too soon: Zoom's Retry-After of
    1 s is rounded up from the 0.6 s left, so the call goes again 1 s after the call Zoom took,
    not 1 s after the 429 (that would cost every call the time the database took)."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 40)
    zoom.registrant_rate_per_second = 1
    database_takes(0.4, clock, monkeypatch)
    run_batch()

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [200, 429, 200]
    assert [len(c.json["registrants"]) for c in calls(zoom, "POST", "/batch_registrants")] == [30, 10, 10]
    assert clock.slept == [pytest.approx(0.6)]
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))
    assert set(added_addresses(zoom).values()) == {1}


def test_a_hiccup_to_a_call_made_too_soon_goes_again_a_second_after_the_call_taken(app, zoom, clock, make_seminar,
                                                                                   monkeypatch):
    """A 5xx to a call that came 0.4 s after a call Zoom took: the second try goes in Zoom's next
    slot (1 s after the call taken), as it would have after a 429, not a whole second later."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 40)
    zoom.registrant_rate_per_second = 1
    zoom.fail_next(1, status=502, path_contains="/batch_registrants", skip=1)
    database_takes(0.4, clock, monkeypatch)
    run_batch()

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [200, 502, 200]
    assert clock.slept == [pytest.approx(0.6)]
    assert set(added_addresses(zoom).values()) == {1}


def test_a_hiccup_in_the_call_slot_is_tried_again_at_once(app, zoom, clock, make_seminar):
    """A 5xx to a call made in its slot (a second after the call Zoom took): tried again at once,
    so the failure costs at most that slot (Zoom did not count the failed call here; had it, its
    429 would say so)."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 40)
    zoom.registrant_rate_per_second = 1
    zoom.fail_next(1, status=503, path_contains="/batch_registrants", skip=2)
    started = clock.now()
    run_batch()

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [200, 429, 503, 200]
    assert clock.now() - started == pytest.approx(1.0)
    assert set(added_addresses(zoom).values()) == {1}


def test_a_second_429_in_a_row_counts_from_itself(app, zoom, clock, make_seminar):
    """Only the first 429 after a call Zoom took counts from that call: asked again and told
    to wait once more, the worker waits the whole of the new Retry-After."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 60)
    zoom.fail_next(2, status=429, retry_after=1, path_contains="/batch_registrants", skip=1)
    run_batch()

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [200, 429, 429, 200]
    assert clock.slept == [pytest.approx(1.0), pytest.approx(1.0)]  # nothing moved the clock between


def test_a_hiccup_after_a_rate_limit_gets_its_own_second_try(app, zoom, clock, make_seminar):
    """A 5xx is tried again once, a second later. A 429 in between shows Zoom is there: a later
    5xx for the same people is a hiccup of its own, not an outage (the kind's backoff, 15-30 s
    for these and 30 s for everyone behind them)."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 40)
    for status in (502, 429, 503):
        zoom.fail_next(1, status=status, retry_after=1 if status == 429 else None,
                       path_contains="/batch_registrants")
    run_batch()

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [502, 429, 503, 200, 200]
    assert {j.state for j in jobs("video.add_attendee")} == {"done"}
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))
    assert set(added_addresses(zoom).values()) == {1}


def test_a_hiccup_when_the_batch_budget_is_spent_costs_one_call_not_a_backoff(app, zoom, clock, make_seminar):
    """The batch has no time left for the quick second try: everyone goes back to the queue for
    that second, not the kind's backoff. Nobody is lost or added twice."""
    seminar = make_seminar(capacity=80)
    work()
    only_adds_queued(seminar, 40)
    app.config["VIDEO_WAIT_BUDGET"] = 0.5
    zoom.fail_next(1, status=502, path_contains="/batch_registrants")
    run_batch()
    asked = utcnow()

    adds = jobs("video.add_attendee")
    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [502]
    assert {j.state for j in adds} == {"pending"}
    assert all(j.due_at <= asked + timedelta(seconds=1) for j in adds)
    work(now=asked + timedelta(seconds=1))
    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [502, 200, 200]
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))
    assert set(added_addresses(zoom).values()) == {1}


def test_one_address_at_its_daily_limit_holds_up_nobody_else(app, zoom, make_seminar):
    """Zoom allows three adds of one address a day: that person waits until tomorrow, and the
    worker goes on adding everyone else, also people who confirm later."""
    seminar = make_seminar(capacity=20)
    work()
    carla = signed_up_after_three_adds_today(seminar)
    confirm_many(seminar, 2, prefix="vandaag")
    confirm(carla.id)
    pauses = Pauses()  # as the long-running worker keeps them
    while run_batch(pauses=pauses):
        pass
    later = confirm_many(seminar, 1, prefix="later")
    while run_batch(pauses=pauses):
        pass

    assert fresh(Registration, carla.id).join_url is None
    assert all(fresh(Registration, reg_id).join_url for reg_id in later)


def test_a_run_takes_due_attendees_along_in_full_calls(app, zoom, make_seminar):
    """A claimed batch of add jobs takes more due attendees of the same seminar along while the
    platform takes them (within VIDEO_WAIT_BUDGET): every call carries as many as it can."""
    seminar = make_seminar(capacity=50)
    work()
    people = [sign_up(seminar.id, SignUpData(name=f"Persoon {i}", email=f"p{i:02d}@kdv.example",
                                             organisation="KDV", location_type="kdv")) for i in range(45)]
    work()  # the confirmation mails
    for reg in people:
        confirm(reg.id)
    app.config["WORKER_BATCH_SIZE"] = 10
    app.config["VIDEO_WAIT_BUDGET"] = 0  # no time to take more along: only what was claimed
    run_batch()
    assert [len(c.json["registrants"]) for c in calls(zoom, "POST", "/batch_registrants")] == [10]

    app.config["VIDEO_WAIT_BUDGET"] = 15
    run_batch()
    assert [len(c.json["registrants"]) for c in calls(zoom, "POST", "/batch_registrants")] == [10, 30, 5]
    assert sum(1 for r in registrations() if r.join_url) == 45
    work()
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))
    assert sorted(set(seat_mails(app).values())) == [1] and len(seat_mails(app)) == 45
