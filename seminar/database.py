"""Database behaviour that must be the same on SQLite and PostgreSQL.

Writers that change seats serialise per seminar: on PostgreSQL with a row lock on the seminar
(`SELECT … FOR UPDATE`), on SQLite by starting the transaction with `BEGIN IMMEDIATE`, which takes
the database's write lock up front. (A plain deferred SQLite transaction that reads first and
writes later fails with "database is locked" instead of waiting when another writer got there in
between; IMMEDIATE makes it wait for `busy_timeout` instead.)
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from werkzeug.routing import IntegerConverter

from .extensions import db

WRITE_LOCK = "seminar_write_lock"
SINGLE_STATEMENT = "seminar_single_statement"


def init_engine(engine: Engine) -> None:
    """Bind this module's connection behaviour to the app's own engine (create_app calls it), so
    no other engine in the process is touched."""
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "checkin", _note_idle)
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "begin", _sqlite_begin)


def _sqlite_connect(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy's "begin" event below emit BEGIN, so we can choose IMMEDIATE per transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA foreign_keys = ON")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


# A database server may drop a pooled connection (restart, failover, an idle timeout). A connection
# that sat in the pool for this long is tested with a `SELECT 1` when it is taken out, and replaced
# if it is dead; connections in constant use (a burst of sign-ups) are not, which saves a round trip
# per request. A connection that dies while in use gives that one request a 503 (errors.py), and the
# pool then replaces every connection older than the failure.
IDLE_PING_SECONDS = 2.0


def _note_idle(dbapi_connection, connection_record) -> None:
    connection_record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    since = connection_record.info.get("idle_since")
    if since is None or isinstance(dbapi_connection, sqlite3.Connection):
        return  # a fresh connection, or a SQLite file: nothing to lose
    if time.monotonic() - since < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        # The driver began a transaction for it: end it, or a connection wanted in autocommit
        # (single_statement) cannot be switched ("connection in transaction status INTRANS").
        dbapi_connection.rollback()
    except Exception as exc:  # the driver's own error for a dead connection
        raise DisconnectionError("pooled connection was dropped by the server") from exc


def _sqlite_begin(conn) -> None:
    if conn.dialect.name == "sqlite":
        options = conn.get_execution_options()
        if options.get(SINGLE_STATEMENT):
            return  # SQLite runs a statement on its own in a transaction of its own
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_LOCK) else "BEGIN")


@contextmanager
def single_statement() -> Iterator[Connection]:
    """A connection of its own for one statement that needs no transaction around it (a read of
    committed data): no BEGIN and ROLLBACK, which on PostgreSQL are round trips of their own."""
    engine = db.engine
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            yield connection.execution_options(**{SINGLE_STATEMENT: True})
        else:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction for changes that must not interleave with another writer's.

    Whatever the session had open is committed first (a deferred SQLite transaction cannot be
    upgraded safely), then the new transaction starts as a writer and commits on success.
    """
    session = db.session()  # the current session itself (the scoped proxy lacks in_transaction)
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={WRITE_LOCK: True})
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


@contextmanager
def write_connection() -> Iterator[Connection]:
    """`write_transaction` on a connection of its own, for a writer of a few Core statements that
    needs no ORM session (the sign-up): a writer's transaction (IMMEDIATE on SQLite) that commits
    on success and rolls back on an error. Whatever the session had open is committed first, as
    `write_transaction` does (on SQLite an open write of this thread's session would otherwise
    block this transaction)."""
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()
    with db.engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK: True})
        with connection.begin():
            yield connection


def lock(model, ident):
    """Load a row for update (row lock on PostgreSQL; the IMMEDIATE transaction covers SQLite)."""
    stmt = (
        select(model)
        .where(model.id == ident)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return db.session.execute(stmt).scalar_one_or_none()


# The largest id the id columns hold on both databases: PostgreSQL's INTEGER (SQLAlchemy sends
# the parameter as ::INTEGER, so a larger one is an error there; SQLite fails beyond 64 bits).
MAX_ID = 2**31 - 1


class DatabaseId(IntegerConverter):
    """`<int:…>` in every route: a non-negative integer that fits the id columns (else 404)."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def database_id(value: str | None) -> int | None:
    """A query parameter as an id (None when it is not one the database could hold)."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_ID else None
