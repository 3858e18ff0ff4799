"""The worker's mail through a limited relay (tests/standins/relay.py): several connections and
never more than allowed; 454, 432 and 421 in the middle of a fan-out lose nothing and send
nothing twice; a used-up quota holds mail instead of failing it; a person's confirmation goes
before hundreds of queued updates."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from seminar.extensions import db
from seminar.models import Job
from seminar.notify.mail_schedule import budget
from seminar.notify.delivery import close_relay_sender
from seminar.programme.service import update_seminar
from seminar.registration.service import SignUpData, confirm, sign_up
from seminar.timeutil import utcnow
from seminar.jobs.worker import run_due
from tests.standins.relay import RelayStandIn, Rules

from .helpers import make_app


@pytest.fixture
def relay():
    with RelayStandIn(Rules(delay=0.002)) as server:
        server.state.reset()
        yield server


@pytest.fixture
def relay_config():
    return {}


@pytest.fixture
def app(db_url, tmp_path, relay, relay_config):
    config = dict(MAIL_SERVER="127.0.0.1", MAIL_PORT=relay.port, MAIL_TIMEOUT=10, **relay_config)
    app = make_app(db_url, tmp_path, **config)
    with app.app_context():
        db.create_all()
        yield app
        close_relay_sender(app)
        db.session.remove()
        db.engine.dispose()


def attendees(seminar, count: int) -> list[str]:
    addresses = [f"deelnemer{i:03d}@kinderopvang.example" for i in range(count)]
    for i, address in enumerate(addresses):
        reg = sign_up(seminar.id, SignUpData(name=f"Deelnemer {i}", email=address, organisation="KDV",
                                             location_type="kdv"))
        confirm(reg.id)
    return addresses


def move(seminar) -> None:
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=1))


def updates(relay) -> Counter:
    return Counter(a.recipients[0] for a in relay.accepted)


def run_until_sent(relay, expected: int, rounds: int = 30) -> None:
    """The worker, again and again as its loop would (later each time: deferred work falls due),
    until the relay has every message or nothing is left to do."""
    for round_ in range(rounds):
        run_due(now=utcnow() + timedelta(minutes=5 * round_))
        if len(relay.accepted) >= expected:
            return


def states() -> dict:
    return dict(db.session.execute(select(Job.state, func.count()).where(Job.kind.like("mail.%"))
                                   .group_by(Job.state)).all())


@pytest.fixture
def fan_out(app, make_seminar, relay):
    seminar = make_seminar(capacity=100)
    addresses = attendees(seminar, 40)
    run_due()  # confirmations, seats, invites
    relay.state.reset()
    move(seminar)
    return addresses


@pytest.mark.parametrize("relay_config", [{"MAIL_MAX_CONNECTIONS": 2}])
def test_several_connections_used_and_never_more_than_allowed(relay, fan_out):
    run_due()
    assert updates(relay) == Counter(fan_out)
    assert relay.peak <= 2
    assert len({a.connection for a in relay.accepted}) >= 2


def test_454_432_421_mid_fan_out_lose_nothing_and_send_nothing_twice(relay, fan_out):
    relay.rules.per_second = 12        # 454 at the end of DATA beyond 12 a second
    relay.rules.max_connections = 2    # 432 for a third connection (MAIL_MAX_CONNECTIONS is 3)
    relay.rules.answer_421_at = {5, 17}  # the relay going away twice
    run_until_sent(relay, len(fan_out))
    assert updates(relay) == Counter(fan_out)  # each exactly once
    assert "failed" not in states()
    refused = relay.state.answers
    assert refused.get(421) == 2 and refused.get(454, 0) + refused.get(432, 0) > 0


def test_quota_answer_holds_mail_instead_of_failing_it(app, relay, fan_out):
    relay.rules.daily = 10
    run_due()
    assert len(relay.accepted) == 10
    held = list(db.session.scalars(select(Job).where(Job.kind == "mail.seminar_changed",
                                                     Job.state == "pending")))
    assert len(held) == 30 and "failed" not in states()
    assert all("quota" in job.last_error and job.attempts == 0 for job in held)
    status = budget().status()
    assert status.held_since is not None and status.held_until is not None
    # The window turns (the relay's clock moved on): the held mail goes out by itself, each once.
    relay.rules.daily = None

    def window_turned(state, tx):
        state.held_until = 0.0
    budget().store.update(window_turned)
    run_until_sent(relay, len(fan_out))
    assert updates(relay) == Counter(fan_out)
    assert budget().status().held_since is None


@pytest.mark.parametrize("relay_config", [{"MAIL_MAX_CONNECTIONS": 1, "WORKER_BATCH_SIZE": 50}])
def test_a_confirmation_is_sent_before_500_queued_updates(app, relay, make_seminar):
    seminar = make_seminar(capacity=100)
    attendees(seminar, 10)
    run_due()
    regs = [row[0] for row in db.session.execute(select(Job.registration_id).where(
        Job.kind == "mail.seat_confirmed"))]
    # 500 calendar updates queued (bulk mail), then someone signs up.
    db.session.execute(insert(Job), [dict(kind="mail.seminar_changed", seminar_id=seminar.id,
                                          registration_id=regs[i % len(regs)], payload={},
                                          state="pending", attempts=0, due_at=utcnow() - timedelta(minutes=1))
                                     for i in range(500)])
    db.session.commit()
    relay.state.reset()
    sign_up(seminar.id, SignUpData(name="Wachtend Persoon", email="wacht@kinderopvang.example",
                                   organisation="KDV", location_type="kdv"))
    from seminar.jobs.runner import run_batch

    run_batch()
    sent = [a.recipients[0] for a in relay.accepted]
    assert "wacht@kinderopvang.example" in sent
    assert sent.index("wacht@kinderopvang.example") < 5  # not behind the 500


# ---------------------------------------------------------------- lanes in the claim

def _due(seminar, kind, count):
    from seminar.jobs import kinds as job_kinds
    from seminar.models import JobState

    db.session.execute(insert(Job), [dict(kind=kind, lane=job_kinds.get(kind).lane, seminar_id=seminar.id,
                                          payload={}, state=JobState.PENDING, attempts=0,
                                          due_at=utcnow() - timedelta(minutes=1)) for _ in range(count)])
    db.session.commit()


def test_bulk_keeps_a_share_of_every_claim(app, make_seminar):
    from seminar.jobs.runner import claim
    from seminar.models import Lane

    seminar = make_seminar(publish=False)
    _due(seminar, "mail.confirm_address", 60)
    _due(seminar, "mail.seminar_changed", 20)
    claimed = claim("w", limit=20)
    lanes = Counter(job.lane for job in claimed)
    assert lanes == {Lane.INTERACTIVE: 15, Lane.BULK: 5}
    assert claimed[0].lane == Lane.INTERACTIVE


@pytest.mark.parametrize("relay_config", [{"MAIL_RATE_LIMIT": "1/second"}])
def test_a_claim_takes_no_more_bulk_mail_than_the_relay_takes_in_a_few_seconds(app, make_seminar):
    from seminar.jobs.runner import claim

    seminar = make_seminar(publish=False)
    _due(seminar, "mail.seminar_changed", 40)
    _due(seminar, "video.update_meeting", 1)  # other bulk work is not held to the relay's pace
    claimed = claim("w", limit=50)
    assert Counter(job.kind for job in claimed) == {"mail.seminar_changed": 5, "video.update_meeting": 1}


def test_a_message_the_sender_never_answers_is_handed_back_for_later(app, make_seminar):
    """A relay that stalls past the sender's own limit: the batch stops waiting for that message
    and hands its job back with a backoff, never stopping the batch with an error."""
    from types import SimpleNamespace

    from seminar.jobs import kinds
    from seminar.jobs.recorder import Recorder
    from seminar.jobs.runner import Batch, claim
    from seminar.models import JobState
    from seminar.notify import delivery

    seminar = make_seminar()
    reg = sign_up(seminar.id, SignUpData(name="Anouk", email="anouk@kdv.example", organisation="KDV",
                                         location_type="kdv"))
    db.session.commit()
    now = utcnow() + timedelta(seconds=1)
    [job] = [j for j in claim("worker-a", now) if j.kind == kinds.CONFIRM_ADDRESS.name]
    stalled = SimpleNamespace(max_stay=0.0)  # the sender's limit for one message: long past
    batch = delivery._Batch(Recorder(Batch("worker-a", now)), stalled)
    try:
        batch.waiting[1] = (job, "anouk@kdv.example", None)
        batch.handed[1] = -1e9
        batch.give_up_on_overdue()
    finally:
        batch.close()
    db.session.rollback()
    back = db.session.get(Job, job.id)
    assert back.state is JobState.PENDING and back.due_at > utcnow()
    assert not batch.waiting and reg.id == back.registration_id


# ---------------------------------------------------------------- the next mail claimed while a batch drains

@pytest.mark.parametrize("relay_config", [{"WORKER_BATCH_SIZE": 10}])
def test_the_next_mail_is_claimed_into_the_batch_while_it_drains(relay, fan_out):
    """The relay's connections never wait for the worker's next claim: one batch goes on with
    the mail that is due, each sent once."""
    from seminar.jobs.runner import run_batch

    assert run_batch() == 10  # claimed at first
    assert updates(relay) == Counter(fan_out)
    changed = db.session.execute(select(Job.state, func.count()).where(Job.kind == "mail.seminar_changed")
                                 .group_by(Job.state)).all()
    assert dict(changed) == {"done": len(fan_out)}


def test_the_batch_ends_instead_when_other_work_is_due_or_the_worker_stops(app, make_seminar):
    from seminar.jobs import kinds as job_kinds
    from seminar.jobs.runner import Batch, Pauses
    from seminar.models import Lane

    mail = [kind.name for kind in job_kinds.mails()]
    seminar = make_seminar(publish=False)
    _due(seminar, "mail.seminar_changed", 5)
    _due(seminar, "mail.confirm_address", 1)
    assert Batch("w", utcnow(), stopping=lambda: True).claim_next(mail) == []
    _due(seminar, "video.update_meeting", 1)
    batch = Batch("w", utcnow(), Pauses())
    assert batch.claim_next(mail) == []  # the platform's turn first: this batch ends
    batch.pauses.add("video.update_meeting", seminar.id, utcnow() + timedelta(minutes=1))
    claimed = batch.claim_next(mail)  # paused work is not waiting for a turn
    assert len(claimed) == 6 and claimed[0].lane == Lane.INTERACTIVE



REDIS_AWAY = {"MAIL_RATE_LIMIT": "20/second", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}


@pytest.mark.parametrize("relay_config", [REDIS_AWAY])
def test_a_relay_pace_that_cannot_be_read_claims_bulk_mail_a_little_at_a_time(app, make_seminar, caplog):
    """Redis (where the shared pace lives) away: the claim goes on, bulk mail a connection's worth
    at a time, instead of every claim failing (platform calls and a person's mail would stop too)."""
    from seminar.jobs import runner
    from seminar.notify.delivery import bulk_mail_cap

    assert bulk_mail_cap() == app.config["MAIL_MAX_CONNECTIONS"] == 3
    assert "could not read the mail relay's pace" in caplog.text
    seminar = make_seminar()
    attendees(seminar, 5)
    move(seminar)
    claimed = Counter(job.kind for job in runner.claim("test-worker", utcnow() + timedelta(seconds=1), 50))
    assert claimed["mail.seminar_changed"] == 3
    assert claimed["video.add_attendee"] == 5  # the platform calls go on


@pytest.mark.parametrize("relay_config", [REDIS_AWAY])
def test_housekeeping_that_fails_does_not_stop_the_worker(app, make_seminar, caplog):
    """start_early cannot read the relay's pace with Redis away: logged, and the batches still run
    (before, every round of the worker failed in its housekeeping and no job ran at all)."""
    seminar = make_seminar()
    attendees(seminar, 2)
    move(seminar)
    run_due(now=utcnow())
    assert "housekeeping start_early failed" in caplog.text
    done = db.session.scalars(select(Job.kind).where(Job.state == "done")).all()
    assert "video.update_meeting" in done  # the platform call went
    # The mail waits for Redis too (its connection slots live there): handed back untried, at once,
    # not after the sender's MAX_STAY, and not failed.
    mail = db.session.execute(select(Job.state, Job.attempts, Job.last_error).where(
        Job.kind.in_(["mail.seat_confirmed", "mail.seminar_changed"]))).all()
    assert mail and all(state == "pending" and attempts == 0 for state, attempts, _ in mail), mail
    assert any("slots cannot be read" in (error or "") for _, _, error in mail), mail
