"""A far-away, limited mail relay on loopback (aiosmtpd), for the tests and `make bench`.

What real relays do to a sender, on demand:
- a delay before every reply (the network round trip plus the relay's own work);
- a per-second quota, the excess answered at the end of DATA with SES's
  `454 4.7.0 Throttling failure: Maximum sending rate exceeded`;
- a cap on connections open at once, the excess answered at MAIL FROM with Exchange Online's
  `432 4.3.2 Concurrent connections limit exceeded` (then the connection is closed);
- `421` at chosen MAIL FROMs (the relay going away mid-batch), closing the connection;
- a daily quota, answered with Exchange Online's `554 5.2.0
  STOREDRV.Submission.Exception:SubmissionQuotaExceededException`.

It records every accepted message (Message-ID, recipients, when) and the peak number of
connections open at once (refused ones included: that is what the relay counts).
`RelayProcess` runs it in a process of its own (the benchmarks), driven over a pipe.
"""
from __future__ import annotations

import asyncio
import email.parser
import email.policy
import multiprocessing as mp
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP

from .smtp import TidyController

THROTTLED = "454 4.7.0 Throttling failure: Maximum sending rate exceeded"
TOO_MANY_CONNECTIONS = "432 4.3.2 Concurrent connections limit exceeded"
GOING_AWAY = "421 4.3.2 Service not available, closing transmission channel"
QUOTA_EXCEEDED = ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; "
                  "Failed to process message due to a permanent exception with message")
HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)


@dataclass
class Accepted:
    message_id: str
    recipients: list[str]
    at: float  # time.monotonic() when the end of DATA was accepted
    connection: int


@dataclass
class Rules:
    delay: float = 0.0                 # seconds before every reply
    per_second: int | None = None      # accepted messages in any 1 s (sliding), else 454
    max_connections: int | None = None  # open at once, else 432 at MAIL FROM
    daily: int | None = None           # accepted in all, else 554 quota exceeded
    answer_421_at: set[int] = field(default_factory=set)  # MAIL FROM numbers (1-based) answered 421


class RelayState:
    """What the relay has seen; shared by its connections (one event loop thread)."""

    def __init__(self, rules: Rules | None = None):
        self.rules = rules or Rules()
        self.lock = threading.Condition()
        self.accepted: list[Accepted] = []
        self.answers: dict[int, int] = {}  # refusal code -> how many
        self.open = 0
        self.peak = 0
        self.connections = 0
        self.mail_froms = 0
        self._recent: deque[float] = deque()

    def reset(self, rules: Rules | None = None) -> None:
        with self.lock:
            if rules is not None:
                self.rules = rules
            self.accepted.clear()
            self.answers.clear()
            self.peak = self.open
            self.mail_froms = 0
            self._recent.clear()

    def refused(self, code: int) -> None:
        self.answers[code] = self.answers.get(code, 0) + 1

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self), timeout)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [a.message_id for a in self.accepted]

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for a in self.accepted for r in a.recipients]

    def summary(self) -> dict:
        with self.lock:
            return {"accepted": [(a.message_id, a.recipients, a.at, a.connection) for a in self.accepted],
                    "answers": dict(self.answers), "peak": self.peak, "connections": self.connections,
                    "mail_froms": self.mail_froms}


class _RelaySMTP(SMTP):
    def __init__(self, state: RelayState, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state = state
        self.number = 0
        self.over_cap = False

    def connection_made(self, transport) -> None:
        state = self.state
        with state.lock:
            state.open += 1
            state.connections += 1
            self.number = state.connections
            state.peak = max(state.peak, state.open)
            cap = state.rules.max_connections
            self.over_cap = cap is not None and state.open > cap
        super().connection_made(transport)

    def connection_lost(self, exc) -> None:
        with self.state.lock:
            self.state.open -= 1
            self.state.lock.notify_all()
        super().connection_lost(exc)

    async def push(self, status) -> None:
        # One delay per reply, not per line of a multi-line reply ("250-…" lines go together).
        line = status.decode("ascii", "replace") if isinstance(status, bytes) else status
        delay = self.state.rules.delay
        if delay and line[3:4] != "-":
            await asyncio.sleep(delay)
        await super().push(status)

    async def smtp_MAIL(self, arg) -> None:
        state = self.state
        with state.lock:
            state.mail_froms += 1
            number = state.mail_froms
            refuse = None
            if self.over_cap:
                refuse = TOO_MANY_CONNECTIONS
            elif number in state.rules.answer_421_at:
                refuse = GOING_AWAY
            if refuse:
                state.refused(int(refuse[:3]))
        if refuse:
            await self.push(refuse)
            self.transport.close()
            return
        await super().smtp_MAIL(arg)


class _Handler:
    def __init__(self, state: RelayState):
        self.state = state

    async def handle_DATA(self, server, session, envelope):
        state = self.state
        now = time.monotonic()
        with state.lock:
            rules = state.rules
            if rules.daily is not None and len(state.accepted) >= rules.daily:
                state.refused(554)
                return QUOTA_EXCEEDED
            recent = state._recent
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if rules.per_second is not None and len(recent) >= rules.per_second:
                state.refused(454)
                return THROTTLED
            recent.append(now)
            headers = HEADERS.parsebytes(envelope.content)
            state.accepted.append(Accepted(str(headers.get("Message-ID", "")), list(envelope.rcpt_tos),
                                           now, server.number))
            state.lock.notify_all()
        return "250 2.6.0 Queued mail for delivery"


class _Controller(TidyController):
    def __init__(self, state: RelayState, port: int):
        super().__init__(_Handler(state), hostname="127.0.0.1", port=port)
        self.state = state

    def make_session(self) -> SMTP:
        return _RelaySMTP(self.state, self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RelayStandIn:
    """The relay in this process (a thread with its own event loop)."""

    def __init__(self, rules: Rules | None = None, port: int | None = None):
        self.state = RelayState(rules)
        self.port = port or free_port()
        self._controller: _Controller | None = None

    @property
    def rules(self) -> Rules:
        return self.state.rules

    def start(self) -> "RelayStandIn":
        self._controller = _Controller(self.state, self.port)
        self._controller.start()
        with self.state.lock:  # aiosmtpd's start-up probe is not a sender's connection
            self.state.connections = self.state.peak = self.state.open
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "RelayStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def accepted(self) -> list[Accepted]:
        return self.state.accepted

    @property
    def peak(self) -> int:
        return self.state.peak

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        return self.state.wait_for(predicate, timeout)

    def wait_accepted(self, count: int, timeout: float = 60.0) -> bool:
        return self.state.wait_for(lambda s: len(s.accepted) >= count, timeout)


def _serve(port: int, rules: Rules, conn) -> None:
    relay = RelayStandIn(rules, port).start()
    conn.send("ready")
    try:
        while True:
            cmd, *args = conn.recv()
            if cmd == "stop":
                break
            if cmd == "reset":
                relay.state.reset(args[0] if args else None)
                conn.send(True)
            elif cmd == "wait":
                count, timeout = args
                conn.send(relay.wait_accepted(count, timeout))
            elif cmd == "summary":
                conn.send(relay.state.summary())
    finally:
        relay.stop()


class RelayProcess:
    """The relay in a process of its own (the benchmarks: its CPU apart from the service's)."""

    def __init__(self, rules: Rules | None = None):
        self.port = free_port()
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(self.port, rules or Rules(), child),
                                   daemon=True, name="relay-stand-in")
        self.process.start()
        if not self._conn.poll(30) or self._conn.recv() != "ready":
            raise RuntimeError("relay stand-in did not start")
        self._lock = threading.Lock()

    def _ask(self, *cmd):
        with self._lock:
            self._conn.send(cmd)
            return self._conn.recv()

    def reset(self, rules: Rules | None = None) -> None:
        self._ask("reset", rules)

    def wait(self, count: int, timeout: float) -> bool:
        return self._ask("wait", count, timeout)

    def summary(self) -> dict:
        return self._ask("summary")

    def close(self) -> None:
        try:
            with self._lock:
                self._conn.send(("stop",))
        except (OSError, EOFError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


def main(argv=None) -> None:
    """`python -m tests.standins.relay --port 2525 --delay 0.025 --per-second 20 --max-connections 3`:
    the relay on its own, for a `make run` instance (MAIL_SERVER=127.0.0.1 MAIL_PORT=2525) to
    send through; prints what it accepted and refused every few seconds."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.standins.relay", description=main.__doc__)
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--delay", type=float, default=0.025, help="seconds before every reply")
    parser.add_argument("--per-second", type=int, default=None, help="454 beyond this many a second")
    parser.add_argument("--max-connections", type=int, default=None, help="432 beyond this many at once")
    parser.add_argument("--daily", type=int, default=None, help="554 quota exceeded beyond this many")
    args = parser.parse_args(argv)
    rules = Rules(args.delay, args.per_second, args.max_connections, args.daily)
    with RelayStandIn(rules, args.port) as relay:
        relay.state.reset()  # not the start-up probe
        print(f"relay stand-in on 127.0.0.1:{relay.port} ({rules}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(5)
                summary = relay.state.summary()
                print(f"accepted {len(summary['accepted'])}, refused {summary['answers']}, "
                      f"peak connections {summary['peak']}", flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
