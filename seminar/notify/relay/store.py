"""Where the relay's shared state lives: the database (default), or Redis.

Both give the same three things to `budget.Budget`:
- `update(fn)`: run `fn(state, tx)` with the state locked against every other worker, and store
  the state it leaves (a row lock on PostgreSQL, SQLite's write lock, a WATCH/MULTI transaction
  on Redis that is run again when another worker got in between: `fn` must only read and decide);
- inside `fn`, through `tx`: counts of messages per quota window, and taking a connection slot;
- `renew_slot` / `release_slot`, for a slot one holds (no lock on the state needed);
- `advance(now, interval)`: the next start, moving the pace on by `interval`, in one statement
  (the path taken for most messages; `update` for the rest).
"""
from __future__ import annotations

import math
from typing import Callable, TypeVar

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ...database import WRITE_LOCK
from ...models import MailRelayCount, MailRelaySlot, MailRelayState
from .control import RelayState
from .quota import Window

T = TypeVar("T")
STATE = MailRelayState.__table__
COUNT = MailRelayCount.__table__
SLOT = MailRelaySlot.__table__


def bucket_of(window: Window, at: float) -> int:
    return int(math.floor(at / window.bucket)) * window.bucket


def window_start(window: Window, now: float) -> int:
    """The first bucket counted as inside the window (whole buckets: errs towards less)."""
    return bucket_of(window, now - window.seconds) + window.bucket


class DatabaseStore:
    def __init__(self, engine: Engine, name: str = "mail"):
        self.engine = engine
        self.name = name

    def _connect(self) -> Connection:
        return self.engine.connect().execution_options(**{WRITE_LOCK: True})

    def update(self, fn: Callable[[RelayState, "_DatabaseTx"], T]) -> T:
        for attempt in range(3):
            try:
                with self._connect() as conn, conn.begin():
                    row = self._locked_row(conn)
                    if row is None:
                        conn.execute(insert(STATE).values(name=self.name, state={}, tat=0.0))
                        row = self._locked_row(conn)
                    data, tat = row
                    state = RelayState.from_dict(data)
                    state.tat = tat
                    result = fn(state, _DatabaseTx(conn))
                    conn.execute(update(STATE).where(STATE.c.name == self.name)
                                 .values(state=state.to_dict(), tat=state.tat))
                return result
            except IntegrityError:
                # Two workers made the first row (or a slot's) at once: the other one's is there now.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _locked_row(self, conn: Connection):
        found = conn.execute(select(STATE.c.state, STATE.c.tat).where(STATE.c.name == self.name)
                             .with_for_update()).first()
        return None if found is None else (found[0] or {}, found[1] or 0.0)

    def read(self) -> RelayState:
        with self.engine.connect() as conn:
            found = conn.execute(select(STATE.c.state, STATE.c.tat).where(STATE.c.name == self.name)).first()
        state = RelayState.from_dict(found[0] if found else None)
        state.tat = found[1] if found else 0.0
        return state

    def advance(self, now: float, interval: float) -> float | None:
        """The start for a message: the later of `now` and the next free one, which moves on by
        `interval`. None when there is no state yet (`update` makes it)."""
        start = case((STATE.c.tat > now, STATE.c.tat), else_=now)
        with self._connect() as conn, conn.begin():
            moved = conn.execute(update(STATE).where(STATE.c.name == self.name)
                                 .values(tat=start + interval).returning(STATE.c.tat)).first()
        return None if moved is None else moved[0] - interval

    def renew_slot(self, number: int, holder: str, lease: float, now: float) -> bool:
        with self._connect() as conn, conn.begin():
            done = conn.execute(update(SLOT).where(SLOT.c.number == number, SLOT.c.holder == holder)
                                .values(lease_until=now + lease))
        return done.rowcount == 1

    def release_slot(self, number: int, holder: str) -> None:
        with self._connect() as conn, conn.begin():
            conn.execute(update(SLOT).where(SLOT.c.number == number, SLOT.c.holder == holder)
                         .values(holder=None, lease_until=None))

    def held_slots(self, now: float) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(SLOT)
                                .where(SLOT.c.holder.is_not(None), SLOT.c.lease_until > now)).scalar_one()

    def clear(self) -> None:
        with self._connect() as conn, conn.begin():
            for table in (STATE, COUNT, SLOT):
                conn.execute(delete(table))


class _DatabaseTx:
    def __init__(self, conn: Connection):
        self.conn = conn

    def total(self, window: Window, now: float) -> int:
        return self.conn.execute(select(func.coalesce(func.sum(COUNT.c.count), 0))
                                 .where(COUNT.c.limit_key == window.key,
                                        COUNT.c.bucket >= window_start(window, now))).scalar_one()

    def frees_at(self, window: Window, now: float) -> float:
        """When the oldest message counted in the window leaves it."""
        oldest = self.conn.execute(select(func.min(COUNT.c.bucket))
                                   .where(COUNT.c.limit_key == window.key, COUNT.c.count > 0,
                                          COUNT.c.bucket >= window_start(window, now))).scalar_one()
        return now if oldest is None else float(oldest + window.seconds)

    def add(self, window: Window, at: float) -> None:
        bucket = bucket_of(window, at)
        done = self.conn.execute(update(COUNT).where(COUNT.c.limit_key == window.key, COUNT.c.bucket == bucket)
                                 .values(count=COUNT.c.count + 1))
        if done.rowcount == 0:
            self.conn.execute(insert(COUNT).values(limit_key=window.key, bucket=bucket, count=1))
            # A new bucket: let go of the ones that left the window long ago.
            self.conn.execute(delete(COUNT).where(COUNT.c.limit_key == window.key,
                                                  COUNT.c.bucket < window_start(window, at) - window.bucket))

    def take_slot(self, holder: str, allowed: int, max_connections: int, lease: float, now: float) -> int | None:
        rows = {number: (who, until) for number, who, until in self.conn.execute(
            select(SLOT.c.number, SLOT.c.holder, SLOT.c.lease_until).with_for_update())}
        live = {n for n, (who, until) in rows.items() if who is not None and until is not None and until > now}
        if len(live) >= allowed:
            return None
        number = next(n for n in range(max_connections + len(live)) if n not in live)
        if number in rows:
            self.conn.execute(update(SLOT).where(SLOT.c.number == number)
                              .values(holder=holder, lease_until=now + lease))
        else:
            self.conn.execute(insert(SLOT).values(number=number, holder=holder, lease_until=now + lease))
        return number
