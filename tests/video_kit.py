"""Helpers shared by the video platform tests (Zoom, Teams, Jitsi, webhooks)."""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from seminar.extensions import db
from seminar.models import Job, Registration, Seminar
from seminar.registration.service import SignUpData, confirm, sign_up
from seminar.timeutil import utcnow

import pytest

from .conftest import Person, links_in, read_eml, work
from .standins.zoom import ZoomStandIn

ZOOM_SECRET = "webhook-secret-token"


def zoom_config(zoom, **extra) -> dict:
    return {
        "VIDEO_PROVIDER": "zoom",
        "ZOOM_ACCOUNT_ID": zoom.account_id,
        "ZOOM_CLIENT_ID": zoom.client_id,
        "ZOOM_CLIENT_SECRET": zoom.client_secret,
        "ZOOM_API_BASE": zoom.api_base,
        "ZOOM_OAUTH_URL": zoom.oauth_url,
        "ZOOM_WEBHOOK_SECRET_TOKEN": ZOOM_SECRET,
        **extra,
    }


def later(hours: float = 2) -> datetime:
    return utcnow() + timedelta(hours=hours)


def fresh(model, ident):
    db.session.rollback()
    return db.session.get(model, ident)


def registrations() -> list[Registration]:
    db.session.rollback()
    return list(db.session.scalars(db.select(Registration).order_by(Registration.id)))


def jobs(kind: str | None = None) -> list[Job]:
    db.session.rollback()
    stmt = db.select(Job).order_by(Job.id)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return list(db.session.scalars(stmt))


def mails_to(app, address: str) -> list:
    return [m for m in read_eml(app) if address.lower() in m["To"].lower()]


def seat_mails(app) -> Counter:
    """How many seat mails (with a join link) each address received."""
    return Counter(m["To"] for m in read_eml(app) if "join" in links_in(m))


def sign_up_through_site(app, client, seminar: Seminar, name: str, email: str) -> Person:
    """Sign up with the form and press the button in the mailed confirmation link."""
    person = Person(client, name=name, email=email)
    assert person.sign_up(seminar).status_code == 303
    work()
    [mail] = [m for m in mails_to(app, email) if "confirm" in links_in(m)][-1:]
    assert person.press_button(links_in(mail)["confirm"]).status_code == 303
    return person


def confirm_many(seminar: Seminar, n: int, prefix: str = "persoon") -> list[int]:
    """Many confirmations at once, through the service (as the site does, without the mails)."""
    ids = []
    for i in range(n):
        data = SignUpData(name=f"Persoon {prefix} {i}", email=f"{prefix}{i:03d}@kinderopvang.example",
                          organisation="KDV", location_type="kdv")
        reg = sign_up(seminar.id, data)
        ids.append(reg.id)
    for reg_id in ids:
        confirm(reg_id)
    return ids


def join_target(client, app, address: str) -> str:
    """Follow the join link in the latest seat mail to `address`; where it redirects."""
    [mail] = [m for m in mails_to(app, address) if "join" in links_in(m)][-1:]
    response = client.get(links_in(mail)["join"].replace("http://seminar.test", ""))
    assert response.status_code == 302, response.status_code
    return response.headers["Location"]


def enable_logs() -> None:
    """Alembic's fileConfig (migrations/env.py) disables every existing logger when a test runs
    the migrations in-process; the video tests read log lines, so switch theirs back on."""
    for name in ("seminar", "seminar.webhooks", "seminar.video", "seminar.video.zoom",
                 "seminar.video.teams", "seminar.worker"):
        logging.getLogger(name).disabled = False


# Fixtures for a module that runs the service against the Zoom stand-in: import all three.
@pytest.fixture
def zoom():
    with ZoomStandIn() as server:
        yield server


@pytest.fixture
def app_config(zoom):
    return zoom_config(zoom)


@pytest.fixture(autouse=True)
def zoom_stays_clean(zoom):
    """Every request we made, and every answer the stand-in gave, matched Zoom's API document."""
    enable_logs()
    yield
    zoom.assert_clean()
