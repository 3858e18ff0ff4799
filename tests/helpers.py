"""Helpers the tests share: databases, a real SMTP server, the site used as a person would, and
short looks at what is stored. Fixtures (conftest.py) are built from these; tests import them from
here."""
from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from seminar import create_app
from seminar.extensions import db
from seminar.jobs.worker import run_due
from seminar.models import Job, Registration
from seminar.timeutil import utcnow
from tests.standins.smtp import TidyController

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


# ---------------------------------------------------------------- databases

def pg_admin_dsn() -> str:
    url = make_url(PG_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_schema():
    """A fresh schema on the test PostgreSQL server, dropped afterwards; yields its URL."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg_admin_dsn(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def make_app(db_url: str, tmp_path: Path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": db_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "MAIL_DIR": str(tmp_path / "instance" / "mail"),
        "BASE_URL": "http://seminar.test",
        "MAIL_SERVER": None,
        "MAIL_DEFAULT_SENDER": "BMK Seminars <seminars@bmk.example>",
        "VIDEO_PROVIDER": "jitsi",
        "JITSI_APP_ID": None,
        "JITSI_APP_SECRET": None,
        "RATELIMIT_ENABLED": False,
        "LOAD_EXAMPLE_PROGRAMME": False,
        "SESSION_COOKIE_SECURE": False,
    }
    config.update(overrides)
    return create_app(config)


# ---------------------------------------------------------------- SMTP

class Inbox:
    """aiosmtpd handler that keeps what arrived; can refuse addresses or fail on demand."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: set[str] = set()          # RCPT answered 550
        self.fail_data_after: int | None = None  # 451 on DATA once this many were accepted
        self.lock = threading.Condition()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.fail_data_after is not None and len(self.messages) >= self.fail_data_after:
                return "451 4.3.0 temporary local problem"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            msg.envelope_to = list(envelope.rcpt_tos)
            self.messages.append(msg)
            self.lock.notify_all()
        return "250 Message accepted"

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        """Block until predicate(messages) holds (woken by each arriving message) or time is up."""
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self.messages), timeout)

    def to(self, address: str) -> list:
        return [m for m in self.messages if address.lower() in [a.lower() for a in m.envelope_to]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    def __init__(self):
        self.recorder = Inbox()
        self.port = free_port()
        self.controller = None

    def start(self):
        self.controller = TidyController(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.recorder.messages


# ---------------------------------------------------------------- the site, as a person uses it

def future(days: int = 30, hour: int = 10) -> datetime:
    day = datetime.now(timezone.utc) + timedelta(days=days)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF.search(html) or re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Person:
    """An attention officer using the site through the test client, as in a browser."""

    def __init__(self, client, name="Anouk de Vries", email="anouk@kinderopvang.example",
                 organisation="Kinderopvang De Boomhut", location_type="kdv"):
        self.client = client
        self.data = dict(name=name, email=email, organisation=organisation,
                         location_type=location_type, question="", consent="y")

    def sign_up(self, seminar, **changes):
        page = self.client.get(f"/seminars/{seminar.slug}")
        assert page.status_code == 200, page.status_code
        form = dict(self.data, csrf_token=csrf_from(page.get_data(as_text=True)))
        form.update(changes)
        form = {k: v for k, v in form.items() if v is not None}
        return self.client.post(f"/seminars/{seminar.slug}", data=form)

    def follow(self, url: str):
        """Open a mailed link; returns the page."""
        path = url.replace("http://seminar.test", "")
        return self.client.get(path)

    def press_button(self, url: str):
        """Open a mailed link and press the button on it (confirm / cancel)."""
        page = self.follow(url)
        assert page.status_code == 200, page.status_code
        path = url.replace("http://seminar.test", "")
        return self.client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})


def read_eml(app) -> list:
    folder = Path(app.config["MAIL_DIR"])
    if not folder.exists():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"))]


def text_of(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def links_in(msg) -> dict[str, str]:
    """The mailed links by kind: confirm, manage, join."""
    found = {}
    for kind in ("confirm", "manage", "join"):
        match = re.search(rf"(http://seminar\.test/r/{kind}/[A-Za-z0-9_.\-]+)", text_of(msg))
        if match:
            found[kind] = match.group(1)
    return found


def work(app=None, now=None) -> int:
    """Run the worker once, as `flask worker --once` does."""
    return run_due(now=now)


# ---------------------------------------------------------------- what is stored

def later(hours: float = 2) -> datetime:
    return utcnow() + timedelta(hours=hours)


def registrations() -> list[Registration]:
    """Every registration as committed now (what the session held before is let go)."""
    db.session.rollback()
    return list(db.session.scalars(db.select(Registration).order_by(Registration.id)))


def jobs(kind: str | None = None, state: str | None = None) -> list[Job]:
    """The outbox as committed now, oldest first; of one kind and state when given."""
    db.session.rollback()
    stmt = db.select(Job).order_by(Job.id)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    if state:
        stmt = stmt.where(Job.state == state)
    return list(db.session.scalars(stmt))
