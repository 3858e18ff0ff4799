"""The relay side of sending: quota, answers, the shared budget, the controller, the sender
against the relay stand-in (tests/standins/relay.py)."""
from __future__ import annotations

import pytest

from seminar.notify.relay import control
from seminar.notify.relay.answers import Meaning, classify
from seminar.notify.lanes import BULK, INTERACTIVE
from seminar.notify.relay.quota import parse_quota
from seminar.notify.relay.messages import Kind
from tests.relay_kit import Clock, collect, kinds, make_budget, make_store, message, relay_sender
from tests.standins.relay import (GOING_AWAY, QUOTA_EXCEEDED, THROTTLED, TOO_MANY_CONNECTIONS,
                                  RelayStandIn, Rules)


# ---------------------------------------------------------------- settings and answers

def test_quota_in_flask_limiter_notation():
    quota = parse_quota("30/minute;10000/day")
    assert [(w.amount, w.seconds) for w in quota.windows] == [(30, 60), (10000, 86400)]
    assert 0.45 < quota.rate < 0.5  # a hair under 30 a minute
    # 600 reminders at 30 a minute take (a little over) 20 minutes: start at 08:40 for 09:00.
    assert 20 * 60 <= quota.seconds_for(600) <= 21 * 60
    assert parse_quota("20 per second").rate == pytest.approx(20 / 1.05)
    assert parse_quota(None).known is False and parse_quota("").rate is None
    assert parse_quota("10000/day").rate is None  # a day's quota alone sets no pace


def test_unreadable_quota_is_refused_with_its_name(tmp_path):
    from tests.helpers import make_app

    with pytest.raises(ValueError, match="MAIL_RATE_LIMIT"):
        make_app(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, MAIL_RATE_LIMIT="lots per minute")


@pytest.mark.parametrize("reply, meaning", [
    (THROTTLED, Meaning.THROTTLED),
    (TOO_MANY_CONNECTIONS, Meaning.THROTTLED),
    (GOING_AWAY, Meaning.THROTTLED),
    ("451 4.7.500 Server busy. Please try again later", Meaning.THROTTLED),
    ("450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
     "additional messages from being delivered", Meaning.THROTTLED),
    ("452 4.4.5 Insufficient system storage", Meaning.THROTTLED),
    ("451 4.3.0 temporary local problem", Meaning.TEMPORARY),
    ("452 4.2.2 Mailbox full", Meaning.TEMPORARY),
    (QUOTA_EXCEEDED, Meaning.QUOTA),
    ("550 5.4.5 Daily user sending limit exceeded", Meaning.QUOTA),
    ("454 4.7.0 Throttling failure: Daily message quota exceeded", Meaning.QUOTA),
    ("550 5.1.1 mailbox unavailable", Meaning.PERMANENT),
    # One recipient's full mailbox or a vague word is not the relay's quota (the bulk mail would
    # be held for everyone), and a plain "try again later" does not slow the pace for all.
    ("552 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException", Meaning.PERMANENT),
    ("452 4.2.2 Mailbox over quota", Meaning.TEMPORARY),
    ("554 5.7.1 Message refused: daily digest address not accepted", Meaning.PERMANENT),
    ("451 4.3.0 Local error, try again later", Meaning.TEMPORARY),
    ("451 4.3.0 Mail server busy, try again later", Meaning.TEMPORARY),
    ("554 5.7.1 Message rejected as spam", Meaning.PERMANENT),
])
def test_answers_are_classified_by_code_enhanced_code_and_text(reply, meaning):
    answer = classify(int(reply[:3]), reply[4:])
    assert answer.meaning is meaning
    assert answer.connection == (reply[:3] in ("421", "432"))


# ---------------------------------------------------------------- the controller

def test_controller_halves_once_per_moment_and_climbs_back_to_the_quota():
    quota = parse_quota("20/second")
    state, now = control.RelayState(), 1000.0
    control.climb(state, now, quota, 3)
    assert state.rate == pytest.approx(quota.rate)
    for _ in range(5):  # a volley of 454s for messages already under way: one signal
        control.throttled(state, now, 454, False, 3)
    assert state.rate == pytest.approx(quota.rate / 2)
    now += control.CUT_GAP
    control.throttled(state, now, 454, False, 3)
    assert state.rate == pytest.approx(quota.rate / 4)
    rates = []
    for _ in range(40):
        now += 1
        control.climb(state, now, quota, 3)
        rates.append(state.rate)
    assert rates == sorted(rates)  # a careful climb, never a jump above the quota
    assert rates[1] - rates[0] <= 0.1 * quota.rate
    assert rates[-1] == pytest.approx(quota.rate)


def test_controller_without_a_known_quota_starts_unpaced_and_halves_what_it_sent():
    quota = parse_quota(None)
    state, now = control.RelayState(), 1000.0
    for i in range(30):  # 30 messages in one second
        control.next_start(state, now + i / 30)
    assert state.rate is None
    control.throttled(state, now + 1, 454, False, 3)
    assert 10 <= state.rate <= 20
    cut = state.rate
    control.climb(state, now + 100, quota, 3)
    assert state.rate > cut  # probing upwards again: no ceiling is known


def test_too_many_connections_lowers_the_connections_for_all_never_below_one():
    state, now = control.RelayState(), 1000.0
    control.throttled(state, now, 432, True, 3)
    assert control.connections_allowed(state, 3) == 2
    for i in range(5):
        control.throttled(state, now + 2 * (i + 1), 432, True, 3)
    assert control.connections_allowed(state, 3) == 1
    assert state.rate is None  # fewer connections, not a slower pace
    control.climb(state, now + 20 + control.CONNECTION_REGAIN, parse_quota(None), 3)
    assert control.connections_allowed(state, 3) == 2


# ---------------------------------------------------------------- the shared budget

STORES = ["database", "redis"]


@pytest.fixture(params=STORES)
def store(request, app):
    store = make_store(request.param)
    yield store
    if request.param == "redis":
        store.clear()


def test_starts_are_paced_to_the_quota(store):
    clock = Clock()
    budget = make_budget(store, "10/second", clock=clock)
    starts = [budget.reserve(BULK).start for _ in range(5)]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert starts[0] == clock.now
    assert all(gap == pytest.approx(1 / budget.quota.rate) for gap in gaps)


def test_sender_threads_taking_starts_at_once_leave_no_hole_in_the_pace(store):
    """Each process takes the shared pace's starts a block at a time; another sender thread that
    takes its block meanwhile must not make this one's starts go unused (a hole at the relay)."""
    clock = Clock()
    budget = make_budget(store, "20/second", clock=clock)
    starts = [budget.reserve(BULK).start]  # the shared state made, the pace known
    real = budget.store

    class AnotherThreadMeanwhile:
        def __getattr__(self, name):
            return getattr(real, name)

        def advance(self, now, interval):
            budget.store = real
            starts.append(budget.reserve(BULK).start)  # the other thread's block comes first
            return real.advance(now, interval)

    budget.store = AnotherThreadMeanwhile()
    starts.append(budget.reserve(BULK).start)
    starts += [budget.reserve(BULK).start for _ in range(40)]
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:])]
    assert all(gap == pytest.approx(1 / budget.quota.rate) for gap in gaps)


def test_a_used_up_day_holds_bulk_mail_but_not_a_persons(store):
    clock = Clock()
    budget = make_budget(store, "100/second;5/day", clock=clock)
    for _ in range(5):
        assert budget.reserve(BULK).start is not None
        clock.move(1)
    held = budget.reserve(BULK)
    assert held.held and held.start is None
    assert held.until > clock.now + 23 * 3600  # when the first of the five leaves the day
    assert budget.reserve(INTERACTIVE).start is not None  # the relay decides for a person's mail
    assert budget.status().held_since is not None
    clock.now = held.until + 1
    assert budget.reserve(BULK).start is not None  # the window turned


def test_connection_slots_are_shared_and_expire_with_a_dead_worker(store):
    clock = Clock()
    budget = make_budget(store, None, connections=3, clock=clock)
    other = make_budget(store, None, connections=3, clock=clock)  # another worker
    taken = [budget.take_connection("a"), budget.take_connection("a"), other.take_connection("b")]
    assert sorted(taken) == [0, 1, 2]
    assert other.take_connection("b") is None
    budget.release_connection(taken[0], "a")
    assert other.take_connection("b") == taken[0]
    if hasattr(store, "engine"):  # Redis lets a lease expire by its own clock
        clock.move(budget.lease + 1)  # worker "a" died holding slot 1; "b" renews its own
        assert other.renew_connection(taken[0], "b") and other.renew_connection(taken[2], "b")
        assert other.take_connection("b") == taken[1]
        assert not budget.renew_connection(taken[1], "a")


def test_a_432_lowers_connections_for_new_takers_only(store):
    clock = Clock()
    budget = make_budget(store, None, connections=3, clock=clock)
    slots = [budget.take_connection(f"w{i}") for i in range(3)]
    budget.report(classify(432, TOO_MANY_CONNECTIONS[4:]))
    assert budget.status().connections == 2
    # Nobody's lease is taken away: each holder still renews its own.
    assert all(budget.renew_connection(slot, f"w{i}") for i, slot in enumerate(slots))
    budget.release_connection(slots[0], "w0")
    assert budget.take_connection("x") is None  # two held, two allowed


# ---------------------------------------------------------------- the sender at the stand-in

@pytest.fixture
def relay():
    with RelayStandIn(Rules(delay=0.005)) as server:
        server.state.reset()
        yield server


def _send(budget, relay, items, **kwargs):
    sender = relay_sender(budget, relay.port, **kwargs)
    try:
        sender.submit(items)
        return collect(sender, len(items))
    finally:
        sender.close()


def _exactly_once(relay, count, tag="t"):
    ids = relay.state.message_ids()
    assert sorted(ids) == sorted(f"<{tag}.{n}@bmk.example>" for n in range(count))


def test_several_connections_used_and_never_more_than_allowed(app, relay):
    budget = make_budget(make_store("database"), None, connections=3)
    results = _send(budget, relay, [message(n) for n in range(60)])
    assert kinds(results) == {Kind.ACCEPTED: 60}
    _exactly_once(relay, 60)
    assert 2 <= relay.peak <= 3
    assert len({a.connection for a in relay.accepted}) >= 2
    assert len(relay.accepted) > len({a.connection for a in relay.accepted})  # each reused


def test_454_mid_batch_loses_nothing_and_sends_nothing_twice(app, relay):
    relay.rules.per_second = 15
    budget = make_budget(make_store("database"), None, connections=3)
    results = _send(budget, relay, [message(n) for n in range(40)])
    assert kinds(results) == {Kind.ACCEPTED: 40}
    _exactly_once(relay, 40)


def test_432_mid_batch_loses_nothing_and_lowers_the_connections(app, relay):
    relay.rules.max_connections = 2
    budget = make_budget(make_store("database"), None, connections=3)
    results = _send(budget, relay, [message(n) for n in range(30)])
    assert kinds(results) == {Kind.ACCEPTED: 30}
    _exactly_once(relay, 30)
    if relay.state.answers.get(432):
        assert budget.status().connections <= 2


def test_421_mid_batch_loses_nothing_and_sends_nothing_twice(app, relay):
    relay.rules.answer_421_at = {5, 12, 13}
    budget = make_budget(make_store("database"), None, connections=2)
    results = _send(budget, relay, [message(n) for n in range(20)])
    assert kinds(results) == {Kind.ACCEPTED: 20}
    _exactly_once(relay, 20)
    assert relay.state.answers[421] == 3


def test_quota_answer_holds_mail_instead_of_failing_it(app, relay):
    relay.rules.daily = 5
    budget = make_budget(make_store("database"), None, connections=1)
    results = _send(budget, relay, [message(n) for n in range(12)])
    assert kinds(results) == {Kind.ACCEPTED: 5, Kind.HELD: 7}
    assert all(r.until is not None for r in results if r.kind is Kind.HELD)
    assert relay.state.answers[554] >= 1
    assert budget.status().held_since is not None


def test_interactive_mail_goes_before_queued_bulk_mail(app, relay):
    budget = make_budget(make_store("database"), "50/second", connections=1)
    items = [message(n) for n in range(30)] + [message(30, lane=INTERACTIVE)]
    results = _send(budget, relay, items)
    order = [r.item.key for r in results if r.kind is Kind.ACCEPTED]
    assert order.index(30) < 5  # not after the 30 bulk mails queued before it
    assert len(order) == 31


@pytest.mark.parametrize("storage", ["database", "redis"])
def test_two_worker_processes_share_one_quota_and_the_connections(db_url, tmp_path, app, relay, storage):
    """Real processes, each with its own budget and sender: their starts together keep the pace,
    and together they never hold more connections than allowed."""
    import multiprocessing as mp
    import uuid

    from tests.relay_kit import REDIS_URL, worker_process

    config = {"MAIL_RATE_LIMIT": "40/second", "MAIL_MAX_CONNECTIONS": 2}
    if storage == "redis":
        config.update(RATELIMIT_STORAGE_URI=REDIS_URL, MAIL_RELAY_REDIS_PREFIX=f"test:relay:{uuid.uuid4().hex}")
    ctx = mp.get_context("spawn")
    pipes, processes = [], []
    for tag in ("a", "b"):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker_process, args=(db_url, str(tmp_path / tag), relay.port,
                                                           config, tag, 30, child), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    try:
        for pipe in pipes:
            assert pipe.poll(60) and pipe.recv() == "ready"
        for pipe in pipes:
            pipe.send("go")
        answers = []
        for pipe in pipes:
            assert pipe.poll(120), "a worker process did not finish"
            answers.append(pipe.recv())
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
    assert [kinds for kinds, _, _ in answers] == [{"accepted": 30}, {"accepted": 30}]
    ids = relay.state.message_ids()
    assert sorted(ids) == sorted(f"<{t}.{n}@bmk.example>" for t in "ab" for n in range(30))
    assert relay.peak <= 2
    starts = sorted(start for _, worker_starts, _ in answers for start in worker_starts)
    gap = 1 / parse_quota("40/second").rate
    assert all(b - a >= gap - 1e-6 for a, b in zip(starts, starts[1:]))  # one pace for both
    if storage == "redis":
        from tests.relay_kit import make_store  # noqa: F401
        import redis as redis_lib

        client = redis_lib.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{config['MAIL_RELAY_REDIS_PREFIX']}:*"))
        assert keys  # the shared state lived in Redis
        client.delete(*keys)
