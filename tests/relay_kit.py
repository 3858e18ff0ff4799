"""Helpers for the relay tests: messages, a budget on the test's database or on Redis, a clock
the tests move, and collecting a sender's results."""
from __future__ import annotations

import uuid
from email.message import EmailMessage

from seminar.extensions import db
from seminar.notify.relay.budget import Budget
from seminar.notify.relay.quota import parse_quota
from seminar.notify.relay.messages import Kind, Outgoing
from seminar.notify.relay.sender import RelaySender
from seminar.notify.relay.smtp import connector
from seminar.notify.relay.store import DatabaseStore

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += seconds


def make_store(kind: str):
    if kind == "redis":
        from seminar.notify.relay.redis_store import RedisStore

        return RedisStore(REDIS_URL, f"test:relay:{uuid.uuid4().hex}")
    return DatabaseStore(db.engine)


def make_budget(store, rate_limit: str | None = None, connections: int = 3, clock=None) -> Budget:
    kwargs = {"clock": clock} if clock is not None else {}
    return Budget(store, parse_quota(rate_limit), connections, **kwargs)


def message(number: int, lane: str = "bulk", tag: str = "t") -> Outgoing:
    msg = EmailMessage()
    msg["From"] = "seminars@bmk.example"
    msg["To"] = f"person{number}@example.nl"
    msg["Subject"] = f"Message {number}"
    msg["Message-ID"] = f"<{tag}.{number}@bmk.example>"
    msg.set_content("Hallo\n")
    return Outgoing(key=number, sender="seminars@bmk.example", recipient=f"person{number}@example.nl",
                    data=msg.as_bytes(), lane=lane)


def relay_sender(budget: Budget, port: int, holder: str = "test", **kwargs) -> RelaySender:
    connect = connector({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_TIMEOUT": 10})
    return RelaySender(budget, connect, holder, **kwargs)


def collect(sender: RelaySender, count: int, timeout: float = 60.0) -> list:
    """The next `count` results (a result per message handed in)."""
    return [sender.results.get(timeout=timeout) for _ in range(count)]


def kinds(results) -> dict:
    out: dict[Kind, int] = {}
    for result in results:
        out[result.kind] = out.get(result.kind, 0) + 1
    return out


def worker_process(db_url: str, instance: str, relay_port: int, config: dict, tag: str, count: int,
                   conn) -> None:
    """A worker process of its own (spawned): its own app, budget and sender on the shared
    database (or Redis), sending `count` messages; sends back the starts it reserved."""
    from tests.helpers import make_app

    app = make_app(db_url, __import__("pathlib").Path(instance), MAIL_SERVER="127.0.0.1",
                   MAIL_PORT=relay_port, **config)
    with app.app_context():
        budget = Budget.from_config(app.config, db.engine)
        starts = []
        reserve = budget.reserve

        def noted(lane="bulk", lead=0.0):
            plan = reserve(lane, lead)
            if plan.start is not None:
                starts.append(plan.start)
            return plan
        budget.reserve = noted
        sender = RelaySender(budget, connector(app.config), f"{tag}-worker")
        conn.send("ready")
        conn.recv()  # both start together
        sender.submit([message(n, tag=tag) for n in range(count)])
        results = collect(sender, count)
        sender.close()
        conn.send(({kind.value: n for kind, n in kinds(results).items()}, starts, sender.peak))
