"""Time: stored in UTC, shown and entered in TIMEZONE (Europe/Amsterdam by default)."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def to_local(value: datetime) -> datetime:
    return value.astimezone(local_zone())


def parse_local(text: str) -> datetime:
    """'YYYY-MM-DD HH:MM' in TIMEZONE -> aware UTC. Raises ValueError for anything else."""
    naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    return naive.replace(tzinfo=local_zone()).astimezone(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, stored naive-UTC on every database so SQLite and
    PostgreSQL compare them the same way."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timeutil.utcnow() or an aware value")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)
