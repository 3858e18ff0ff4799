"""The relay budget every worker shares: connections to hold and moments to start a message.

    budget = Budget.from_config(app.config, db.engine)
    slot = budget.take_connection(holder)          # None: all connections are in use
    plan = budget.reserve(lane)                    # when this message may start (or: held)
    budget.report(answer, lane)                    # what the relay said: the controller adjusts
    budget.release_connection(slot, holder)

MAIL_MAX_CONNECTIONS caps the connections all workers together hold; MAIL_RATE_LIMIT is the
relay's quota (quota.py). The state lives in the database, or in Redis when
RATELIMIT_STORAGE_URI is redis:// (store.py, redis_store.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from ..lanes import BULK
from . import control
from .answers import Answer, Meaning
from .control import RelayState
from .quota import Quota, parse_quota
from .store import DatabaseStore

LEASE_SECONDS = 60.0  # a connection slot not renewed for this long is free again (its worker died)
CACHE_SECONDS = 1.0   # with no quota and no trouble, the state read this recently is good enough
BLOCK_SECONDS = 0.5   # the shared pace's starts are taken this many seconds' worth at a time


@dataclass(frozen=True)
class Plan:
    """`start`: when the message may start (epoch seconds). Otherwise `until`: try again then;
    `held`: bulk mail held because a quota is used up (not a failure, not an attempt)."""

    start: float | None = None
    until: float | None = None
    held: bool = False
    reason: str = ""
    holding: bool = False  # a hold is on (for interactive mail that went ahead of it)


@dataclass(frozen=True)
class Status:
    """What the portal shows."""

    throttled: bool
    throttled_code: int
    rate: float | None           # messages per second now (None: no pace)
    quota_rate: float | None     # what MAIL_RATE_LIMIT allows
    connections: int
    max_connections: int
    held: bool                   # bulk mail held now (the quota is used up)
    held_since: float | None
    held_until: float | None
    held_reason: str | None
    alerted_at: float | None


class Budget:
    def __init__(self, store, quota: Quota, max_connections: int,
                 clock: Callable[[], float] = time.time, lease: float = LEASE_SECONDS):
        self.store = store
        self.quota = quota
        self.max_connections = max(1, max_connections)
        self.clock = clock
        self.lease = lease
        self._cached: tuple[float, RelayState] | None = None
        self._uncounted = 0
        self._lock = threading.Lock()
        self._counted = any(window.is_quota for window in quota.windows)  # a day's quota: counted
        self._block: list[float] = []  # starts taken from the shared pace, not yet used

    @classmethod
    def from_config(cls, config: Mapping, engine, clock: Callable[[], float] = time.time) -> "Budget":
        quota = parse_quota(config.get("MAIL_RATE_LIMIT"))
        uri = config.get("RATELIMIT_STORAGE_URI") or ""
        if uri.startswith(("redis://", "rediss://")):
            from .redis_store import RedisStore

            store = RedisStore(uri, config.get("MAIL_RELAY_REDIS_PREFIX") or "seminar:mail-relay")
        else:
            store = DatabaseStore(engine)
        return cls(store, quota, int(config.get("MAIL_MAX_CONNECTIONS") or 3), clock)

    # ------------------------------------------------------------------ connections
    def take_connection(self, holder: str) -> int | None:
        def take(state: RelayState, tx) -> int | None:
            now = self.clock()
            control.climb(state, now, self.quota, self.max_connections)
            allowed = control.connections_allowed(state, self.max_connections)
            return tx.take_slot(holder, allowed, self.max_connections, self.lease, now)
        return self.store.update(take)

    def renew_connection(self, number: int, holder: str) -> bool:
        """False: the lease ran out and may be someone else's now; stop using the connection."""
        return self.store.renew_slot(number, holder, self.lease, self.clock())

    def release_connection(self, number: int, holder: str) -> None:
        self.store.release_slot(number, holder)

    # ------------------------------------------------------------------ pace
    def reserve(self, lane: str = BULK, lead: float = 0.0) -> Plan:
        """The next start for a message of `lane`, at least `lead` seconds from now (the time its
        MAIL FROM and RCPT TO take, so that the message itself goes at the start)."""
        now = self.clock()
        advanced = False
        with self._lock:
            fresh = self._cached is not None and now - self._cached[0] < CACHE_SECONDS
            state = self._cached[1] if fresh else None
            if fresh and state.held_since is None and not self._counted:
                if state.rate is None and not self.quota.known:
                    # No quota, no trouble: nothing to pace, so no write per message; the starts
                    # are counted in the next write (the controller measures the rate with them).
                    self._uncounted += 1
                    return Plan(start=now)
                advanced = state.rate is not None
            if not advanced:
                uncounted, self._uncounted = self._uncounted, 0
        if advanced:
            start = self._next_of_block(now + lead, 1.0 / state.rate)
            if start is not None:
                return Plan(start=start)

        def plan(state: RelayState, tx) -> Plan:
            control.climb(state, now, self.quota, self.max_connections)
            control.count(state, now, uncounted)
            holding = state.held_since is not None
            if lane == BULK and state.held(now):
                return Plan(until=state.held_until, held=True, reason=state.held_reason or "", holding=True)
            # Windows shorter than an hour are kept by the pace itself (never faster than the
            # slowest of them); the longer ones (a day's quota) are counted.
            for window in self.quota.windows:
                if not window.is_quota or tx.total(window, now) < window.amount:
                    continue
                frees = max(tx.frees_at(window, now), now + 1.0)
                if lane == BULK:
                    reason = f"MAIL_RATE_LIMIT: {window.amount} per {window.seconds} s used up"
                    control.quota_used_up(state, now, reason, frees)
                    return Plan(until=frees, held=True, reason=reason, holding=True)
                # A person is waiting: the relay decides (its count may differ from ours).
            start = control.next_start(state, now + lead)
            for window in self.quota.windows:
                if window.is_quota:
                    tx.add(window, start)
            return Plan(start=start, holding=holding)

        result, state = self.store.update(lambda state, tx: (plan(state, tx), state))
        self._cached = (now, state)
        return result

    def _next_of_block(self, earliest: float, interval: float) -> float | None:
        """Paced, nothing to count, all well a moment ago: the starts are taken from the shared
        pace a few at a time (one statement for a block of BLOCK_SECONDS, consecutive, so no
        other worker's fall in between) and handed to this process's connections in turn. A
        start that has passed unused is left (the pace only ever errs towards slower). Two of
        this process's threads that take a block at once keep both blocks' starts (one block
        replacing the other left its starts unused: a pause at the relay)."""
        with self._lock:
            while self._block and self._block[0] < earliest - interval / 2:
                self._block.pop(0)
            if self._block:
                return self._block.pop(0)
        count = max(1, int(BLOCK_SECONDS / interval))
        start = self.store.advance(earliest, count * interval)
        if start is None:
            return None
        with self._lock:
            self._block = sorted(self._block + [start + n * interval for n in range(1, count)])
        return start

    def interval(self) -> float:
        """Seconds between starts at the pace last seen here (0: no pace)."""
        rate = self._cached[1].rate if self._cached is not None else self.quota.rate
        return 1.0 / rate if rate else 0.0

    # ------------------------------------------------------------------ answers
    def report(self, answer: Answer | None, lane: str = BULK) -> None:
        """What the relay answered a message. None: accepted (only needed while a hold is on)."""
        now = self.clock()

        with self._lock:
            uncounted, self._uncounted = self._uncounted, 0
            if answer is not None:
                self._block.clear()  # starts taken at the old pace: not used any more

        def note(state: RelayState, tx) -> RelayState:
            control.count(state, now, uncounted)
            if answer is None:
                control.sent(state)
            elif answer.meaning is Meaning.THROTTLED:
                control.throttled(state, now, answer.code, answer.connection, self.max_connections, self.quota)
            elif answer.meaning is Meaning.QUOTA:
                control.quota_used_up(state, now, str(answer), self._window_turns(tx, now))
            return state

        self._cached = (now, self.store.update(note))

    def _window_turns(self, tx, now: float) -> float | None:
        """When the longest quota window we know frees a message; None: unknown (probe later)."""
        quotas = [w for w in self.quota.windows if w.is_quota]
        if not quotas:
            return None
        return max(tx.frees_at(quotas[-1], now), now + 60.0)

    def mark_alerted(self) -> bool:
        """Note that the organisers were told about the current hold; False if already done."""
        now = self.clock()

        def mark(state: RelayState, tx) -> bool:
            if state.held_since is None or state.alerted_at is not None:
                return False
            state.alerted_at = now
            return True
        return self.store.update(mark)

    def read(self) -> RelayState:
        """The shared state as it is now (for `seconds_for` and `status` from one read)."""
        return self.store.read()

    def seconds_for(self, count: int, lane: str = BULK, state: RelayState | None = None) -> float | None:
        """About how long `count` messages take from now at the pace we know (the quota, slower
        while throttled, and a hold on bulk mail first); None: no pace known yet."""
        if count <= 0:
            return 0.0
        state, now = state or self.read(), self.clock()
        rate = state.rate if state.rate is not None else (state.measured or None)
        seconds = self.quota.seconds_for(count) if self.quota.known else None
        if rate:
            seconds = max(seconds or 0.0, (count - 1) / rate)
        if seconds is None:
            return None
        if lane == BULK and state.held(now):
            seconds += state.held_until - now
        return seconds

    def status(self, state: RelayState | None = None) -> Status:
        state = state or self.read()
        now = self.clock()
        return Status(
            throttled=now - state.throttled_at < control.THROTTLED_SHOWN,
            throttled_code=state.throttled_code,
            rate=state.rate,
            quota_rate=self.quota.rate,
            connections=control.connections_allowed(state, self.max_connections),
            max_connections=self.max_connections,
            held=state.held(now),
            held_since=state.held_since,
            held_until=state.held_until,
            held_reason=state.held_reason,
            alerted_at=state.alerted_at,
        )
