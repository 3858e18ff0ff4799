"""The database going away briefly: a clear 503 for the request that met it, then service as usual."""
from __future__ import annotations

import psycopg
import pytest

from seminar.extensions import db
from seminar.models import Registration

from .helpers import PG_URL, pg_admin_dsn, postgres_schema

# Cutting connections needs a database server: this runs when TEST_DATABASE_URL is set (always
# in CI); SQLite has no connections to cut.
pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")


@pytest.fixture
def db_url():
    with postgres_schema() as url:
        yield url


def cut_connections():
    """Terminate every server connection of this test (they carry our schema in search_path)."""
    with psycopg.connect(pg_admin_dsn(), autocommit=True) as admin:
        pids = admin.execute("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                             "AND datname = current_database() AND state IS NOT NULL "
                             "AND application_name = 'seminar-outage-test'").fetchall()
        for (pid,) in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(pids)


@pytest.fixture
def app_config():
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False,
                                          "connect_args": {"application_name": "seminar-outage-test"}}}


def test_request_during_outage_gets_503_and_the_next_one_works(app, client, person, make_seminar):
    seminar = make_seminar()
    assert client.get("/").status_code == 200
    db.session.rollback()
    assert cut_connections() >= 1
    response = client.get("/")
    assert response.status_code == 503
    assert "tijdelijk niet beschikbaar" in response.get_data(as_text=True).lower()
    # The pool threw the dead connection away; the next request and a sign-up work.
    assert client.get("/").status_code == 200
    assert person.sign_up(seminar).status_code == 303
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == 1


def test_a_dropped_idle_connection_is_replaced_unseen(app, client, person, make_seminar, monkeypatch):
    """A connection that sat in the pool is tested when taken out: the server having dropped it
    (a restart, an idle timeout) costs nobody an error."""
    from seminar import database

    seminar = make_seminar()
    assert client.get("/").status_code == 200
    db.session.rollback()
    assert cut_connections() >= 1
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle
    assert client.get("/").status_code == 200
    assert person.sign_up(seminar).status_code == 303
