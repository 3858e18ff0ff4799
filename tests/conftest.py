"""Fixtures: a fresh database per test (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
a real SMTP server on loopback, the site used as a person would. What they are built from, and
every helper tests import, is in helpers.py."""
from __future__ import annotations

import pytest
from flask import g, request_started

from seminar.extensions import db
from seminar.programme.service import create_seminar

from .helpers import BACKENDS, Person, SmtpServer, future, make_app, postgres_schema


# ---------------------------------------------------------------- databases

@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A database of its own for every test: a temp SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def app_config():
    """Override in a test module (or parametrize) to change settings."""
    return {}


@pytest.fixture
def app(db_url, tmp_path, app_config):
    app = make_app(db_url, tmp_path, **app_config)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def fresh_request_globals(request):
    """conftest's app fixtures keep one app context open for the whole test, so Flask's `g` -
    where Flask-Login caches the logged-in user and Flask-WTF the CSRF token - would outlive a
    request and hide what a browser meets (e.g. a session that is gone). In production every
    request has a `g` of its own: give each test request one too."""
    names = [name for name in ("smtp_app", "app") if name in request.fixturenames]
    if not names:
        yield
        return
    app = request.getfixturevalue(names[0])

    def clear(sender, **extra):
        for name in list(vars(g)):
            delattr(g, name)

    request_started.connect(clear, app)
    yield
    request_started.disconnect(clear, app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------- SMTP

@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_app(db_url, tmp_path, smtp, app_config):
    app = make_app(db_url, tmp_path, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, **app_config)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------- domain helpers

@pytest.fixture
def make_seminar(app):
    def make(**kw):
        values = dict(title="Trauma-sensitief werken en opvoeden", start_at=future(),
                      duration_minutes=90, capacity=10, publish=True)
        values.update(kw)
        return create_seminar(**values)
    return make


@pytest.fixture
def person(client):
    return Person(client)
