"""Flask-Limiter's counters in the service's own database, so every process counts together.

`make run` starts two gunicorn processes; with `memory://` each counted on its own and every limit
was doubled. This storage (scheme `seminar-db://`, the default when RATELIMIT_STORAGE_URI is unset)
keeps the fixed-window counters in the `rate_limit_counter` table of the database in use: one
atomic upsert statement per hit. Redis
(`redis://…`) stays the choice for several machines; `memory://` still means per process.

It implements the `limits` package's public Storage API (incr, get, get_expiry, check, reset,
clear), which the fixed-window strategy (Flask-Limiter's default) uses.
"""
from __future__ import annotations

import hashlib
import time

from limits.storage import Storage
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from .database import single_statement
from .extensions import db
from .models import RateLimitCounter

SCHEME = "seminar-db"
DEFAULT_URI = f"{SCHEME}://"
CLEAN_EVERY = 200  # hits per process between removals of expired counters

_table = RateLimitCounter.__table__


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class DatabaseStorage(Storage):
    """`seminar-db://`: the counters in the app's database (see the module's docstring)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._hits = 0

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        engine = db.engine
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(_table).values(key=_digest(key), count=amount, expires_at=now + expiry)
        expired = _table.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[_table.c.key],
            set_={"count": case((expired, amount), else_=_table.c.count + amount),
                  "expires_at": case((expired, now + expiry), else_=_table.c.expires_at)},
        ).returning(_table.c.count)
        # One statement is atomic on its own: no BEGIN/COMMIT round trips around it (SQLite runs
        # it in a write transaction of its own, waiting for busy_timeout; PostgreSQL's upsert
        # takes the row lock).
        with single_statement() as connection:
            count = connection.execute(stmt).scalar_one()
            self._hits += 1
            if self._hits % CLEAN_EVERY == 0:
                connection.execute(delete(_table).where(_table.c.expires_at < now))
        return int(count)

    def _row(self, key: str):
        with db.engine.connect() as connection:
            return connection.execute(
                select(_table.c.count, _table.c.expires_at).where(_table.c.key == _digest(key))
            ).one_or_none()

    def get(self, key: str) -> int:
        row = self._row(key)
        return int(row.count) if row is not None and row.expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return float(row.expires_at) if row is not None and row.expires_at > time.time() else time.time()

    def check(self) -> bool:
        try:
            with db.engine.connect() as connection:
                connection.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with db.engine.begin() as connection:
            return connection.execute(delete(_table)).rowcount

    def clear(self, key: str) -> None:
        with db.engine.begin() as connection:
            connection.execute(delete(_table).where(_table.c.key == _digest(key)))
