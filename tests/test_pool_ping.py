"""Found by the announcement benchmark: a pooled PostgreSQL connection that sat idle is tested with
`SELECT 1` when taken out; that must not leave it inside a transaction, or the sign-up page's
autocommit read (database.single_statement) fails with a 500."""
from __future__ import annotations

from sqlalchemy import text

from seminar import database
from seminar.database import single_statement
from seminar.extensions import db


def test_an_idle_connection_is_tested_without_leaving_a_transaction_open(app, client, make_seminar, monkeypatch):
    slug = make_seminar().slug
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)  # every connection counts as idle
    db.session.remove()
    for _ in range(3):
        with single_statement() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        assert client.get(f"/seminars/{slug}").status_code == 200
