"""The congestion controller: how fast, and over how many connections, all workers send.

One state for every worker (kept where they all see it, see store.py), changed only inside the
store's transactions, so each rule below reads as if one sender existed:

- Pace: messages start at least 1/rate apart (`tat`, the next free start). With a known quota
  the rate starts at the quota and never exceeds it; without one there is no pace until the relay
  first says "slow down".
- Throttled (454, 4.7.x, …): the rate halves, once per moment of trouble (a volley of 454s from
  messages already under way is one signal, not ten). Then it climbs back by a small step each
  second without trouble: additive increase, multiplicative decrease, as TCP does.
- Too many connections (432, 421): one connection fewer for everybody (never below one) and the
  one that was refused is closed; connections that others hold are left alone, they simply are
  not replaced once released. One more is allowed again after a quiet while.
- Quota used up (554 …QuotaExceeded): bulk mail is held until the window turns.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .quota import Quota

CUT_GAP = 1.0          # seconds: throttle answers closer together than this are one signal
CLIMB_AFTER = 2.0      # seconds without trouble before the rate climbs again
CLIMB_STEP = 0.05      # per second: this share of the rate it was cut from
KNOWN_CUT = 0.8       # the step down while paced at a known quota
MIN_RATE = 0.05        # messages per second: never slower than one each 20 s
CONNECTION_REGAIN = 60.0  # seconds without a 432/421 before one more connection is allowed
PERIOD = 2.0           # seconds over which the sending rate is measured
THROTTLED_SHOWN = 300.0  # the portal says "throttled" this long after the last such answer
QUOTA_PROBE = 3600.0   # quota used up and no window known: try again after this long


@dataclass
class RelayState:
    tat: float = 0.0                  # the next free start (epoch seconds)
    rate: float | None = None         # messages/s allowed now; None: no pace
    cut_from: float | None = None     # the rate before the last cut (sets the climbing step)
    last_cut: float = 0.0
    last_climb: float = 0.0
    connections: int | None = None    # connections allowed now; None: MAIL_MAX_CONNECTIONS
    last_connection_cut: float = 0.0
    period_start: float = 0.0
    period_count: int = 0
    measured: float = 0.0             # messages/s over the last whole period
    throttled_at: float = 0.0
    throttled_code: int = 0
    held_since: float | None = None   # quota used up: bulk held since / until
    held_until: float | None = None
    held_reason: str | None = None
    alerted_at: float | None = None   # the organisers were mailed about this hold

    def held(self, now: float) -> bool:
        """Bulk mail is held now: the relay's quota is used up until `held_until`."""
        return self.held_until is not None and now < self.held_until

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "RelayState":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def climb(state: RelayState, now: float, quota: Quota, max_connections: int) -> None:
    """Time passing without trouble: the rate and the connections creep back up."""
    ceiling = quota.rate
    if state.rate is None and ceiling is not None:
        state.rate = ceiling
    if state.rate is not None and state.cut_from is not None:
        since = max(state.last_climb, state.last_cut + CLIMB_AFTER)
        if now > since:
            state.rate += CLIMB_STEP * state.cut_from * (now - since)
            state.last_climb = now
        if ceiling is not None and state.rate >= ceiling:
            state.rate, state.cut_from = ceiling, None  # back at the quota: nothing to climb to
    if state.connections is not None and now - state.last_connection_cut >= CONNECTION_REGAIN:
        state.connections += 1
        state.last_connection_cut = now  # the next one after another quiet while
        if state.connections >= max_connections:
            state.connections = None
    if state.held_until is not None and now >= state.held_until:
        state.held_until = None  # the window turned: try again (held_since stays until mail goes)


def connections_allowed(state: RelayState, max_connections: int) -> int:
    return max_connections if state.connections is None else max(1, min(state.connections, max_connections))


def next_start(state: RelayState, now: float) -> float:
    """Reserve the next start: the later of now and the next free one."""
    start = max(now, state.tat)
    state.tat = start + (1.0 / state.rate if state.rate else 0.0)
    count(state, start, 1)
    return start


def count(state: RelayState, at: float, starts: int) -> None:
    """Starts made (here or, unpaced, in a worker's memory since its last write): the rate being
    sent is measured over periods of PERIOD seconds."""
    if at - state.period_start >= PERIOD:
        span = at - state.period_start
        state.measured = state.period_count / span if state.period_start and span < 4 * PERIOD else 0.0
        state.period_start, state.period_count = at, 0
    state.period_count += starts


def throttled(state: RelayState, now: float, code: int, connection: bool, max_connections: int,
              quota: Quota | None = None) -> None:
    state.throttled_at, state.throttled_code = now, code
    if connection:
        if now - state.last_connection_cut >= CUT_GAP:
            current = connections_allowed(state, max_connections)
            state.connections = max(1, current - 1)
            state.last_connection_cut = now
        return
    if now - state.last_cut < CUT_GAP:
        return
    current = state.rate
    if current is None:
        # No pace yet: halve what was being sent (measured over the last moments).
        span = max(now - state.period_start, 0.5)
        current = max(state.measured, state.period_count / span, 2 * MIN_RATE)
    # Paced at a known quota and still told to slow down: our moments jittered, or someone else
    # sends on the same account; a smaller step down does. Without a known quota: halve.
    known = quota is not None and quota.rate is not None and current >= 0.9 * quota.rate
    state.cut_from = current
    state.rate = max(MIN_RATE, current * (KNOWN_CUT if known else 0.5))
    state.last_cut = now
    # The relay's window needs to empty before the next start.
    state.tat = max(state.tat, now + 1.0 / state.rate)


def quota_used_up(state: RelayState, now: float, reason: str, until: float | None) -> None:
    if state.held_since is None:
        state.held_since = now
    state.held_until = max(until or now + QUOTA_PROBE, state.held_until or 0.0)
    state.held_reason = reason[:300]


def sent(state: RelayState) -> None:
    """A message got through: a hold is over."""
    state.held_since = state.held_until = state.held_reason = None
    state.alerted_at = None
