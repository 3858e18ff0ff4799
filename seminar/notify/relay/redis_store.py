"""The relay's shared state in Redis (RATELIMIT_STORAGE_URI=redis://…), for several machines.

Same contract as store.DatabaseStore. One key holds the state (JSON); every `update` writes it,
so WATCHing that key alone serialises all updates: counts and slots read inside an update are
exactly what the others left. Counts are one key per bucket (expiring once out of the window),
slots one key per connection (`SET NX PX`: a lease Redis itself lets expire).
"""
from __future__ import annotations

import json
from typing import Callable, TypeVar

import redis

from .control import RelayState
from .quota import Window
from .store import bucket_of, window_start

T = TypeVar("T")
RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
           "else return 0 end")
ADVANCE = ("local t = tonumber(redis.call('get', KEYS[1]) or '0') local now = tonumber(ARGV[1]) "
           "if t < now then t = now end "
           "redis.call('set', KEYS[1], string.format('%.17g', t + tonumber(ARGV[2]))) "
           "return string.format('%.17g', t)")
RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
         "else return 0 end")


class RedisStore:
    def __init__(self, url: str, prefix: str = "seminar:mail-relay"):
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = prefix
        self.state_key = f"{prefix}:state"
        self.tat_key = f"{prefix}:tat"  # the next free start, apart: one script moves it per message
        self._advance = self.redis.register_script(ADVANCE)
        self._release = self.redis.register_script(RELEASE)
        self._renew = self.redis.register_script(RENEW)

    def slot_key(self, number: int) -> str:
        return f"{self.prefix}:slot:{number}"

    def update(self, fn: Callable[[RelayState, "_RedisTx"], T]) -> T:
        def run(pipe) -> T:
            raw, tat = pipe.get(self.state_key), pipe.get(self.tat_key)
            state = RelayState.from_dict(json.loads(raw) if raw else None)
            state.tat = float(tat or 0.0)
            tx = _RedisTx(self, pipe)
            result = fn(state, tx)
            pipe.multi()
            pipe.set(self.state_key, json.dumps(state.to_dict()))
            pipe.set(self.tat_key, repr(state.tat))
            for command in tx.writes:
                command(pipe)
            return result

        return self.redis.transaction(run, self.state_key, self.tat_key, value_from_callable=True)

    def read(self) -> RelayState:
        raw, tat = self.redis.mget([self.state_key, self.tat_key])
        state = RelayState.from_dict(json.loads(raw) if raw else None)
        state.tat = float(tat or 0.0)
        return state

    def advance(self, now: float, interval: float) -> float | None:
        return float(self._advance(keys=[self.tat_key], args=[repr(now), repr(interval)]))

    def renew_slot(self, number: int, holder: str, lease: float, now: float) -> bool:
        return bool(self._renew(keys=[self.slot_key(number)], args=[holder, int(lease * 1000)]))

    def release_slot(self, number: int, holder: str) -> None:
        self._release(keys=[self.slot_key(number)], args=[holder])

    def held_slots(self, now: float, max_connections: int = 64) -> int:
        keys = [self.slot_key(n) for n in range(max_connections)]
        return sum(1 for value in self.redis.mget(keys) if value is not None)

    def clear(self) -> None:
        keys = list(self.redis.scan_iter(f"{self.prefix}:*"))
        if keys:
            self.redis.delete(*keys)


class _RedisTx:
    """Reads go to Redis at once (the pipeline is WATCHing, not yet in MULTI); writes are kept
    and sent in the MULTI that stores the state."""

    def __init__(self, store: RedisStore, pipe):
        self.store, self.pipe = store, pipe
        self.writes: list[Callable] = []

    def _key(self, window: Window, bucket: int) -> str:
        return f"{self.store.prefix}:count:{window.key}:{bucket}"

    def _counts(self, window: Window, now: float) -> list[tuple[int, int]]:
        first, last = window_start(window, now), bucket_of(window, now)
        buckets = list(range(first, last + 1, window.bucket))
        values = self.pipe.mget([self._key(window, b) for b in buckets]) if buckets else []
        return [(b, int(v)) for b, v in zip(buckets, values) if v is not None]

    def total(self, window: Window, now: float) -> int:
        return sum(count for _, count in self._counts(window, now))

    def frees_at(self, window: Window, now: float) -> float:
        counted = [b for b, count in self._counts(window, now) if count > 0]
        return float(counted[0] + window.seconds) if counted else now

    def add(self, window: Window, at: float) -> None:
        key = self._key(window, bucket_of(window, at))
        ttl = window.seconds + 2 * window.bucket

        def write(pipe) -> None:
            pipe.incr(key)
            pipe.expire(key, ttl)
        self.writes.append(write)

    def take_slot(self, holder: str, allowed: int, max_connections: int, lease: float, now: float) -> int | None:
        numbers = range(max_connections + allowed)
        values = self.pipe.mget([self.store.slot_key(n) for n in numbers])
        live = {n for n, value in zip(numbers, values) if value is not None}
        if len(live) >= allowed:
            return None
        number = next(n for n in numbers if n not in live)
        key, ms = self.store.slot_key(number), int(lease * 1000)
        self.writes.append(lambda pipe: pipe.set(key, holder, px=ms))
        return number
