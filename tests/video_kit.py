"""Helpers shared by the video platform tests (Zoom, Teams, Jitsi, webhooks)."""
from __future__ import annotations

import logging
from collections import Counter

from seminar.extensions import db
from seminar.models import Seminar
from seminar.registration.service import SignUpData, cancel, confirm, sign_up
from seminar.video.base import Clock, VideoProvider

import pytest

from .helpers import Person, links_in, read_eml, work
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


def fresh(model, ident):
    db.session.rollback()
    return db.session.get(model, ident)


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


class FakeClock(Clock):
    """The providers' clock, moved by hand: waiting moves it at once (nothing sleeps)."""

    def __init__(self) -> None:
        self.at = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.move(max(0.0, seconds))

    def move(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def clock(monkeypatch, zoom) -> FakeClock:
    """One clock for the providers and the Zoom stand-in's rate limit."""
    fake = FakeClock()
    monkeypatch.setattr(VideoProvider, "clock", fake)
    zoom.clock = fake.now
    return fake


# ---------------------------------------------------------------- looking at Zoom

def meeting_id(seminar) -> int:
    return int(fresh(Seminar, seminar.id).meeting_id)


def calls(zoom, method=None, contains=""):
    return [c for c in zoom.calls if (method is None or c.method == method) and contains in c.path]


def approved(zoom, mid) -> dict[str, str]:
    return {r["email"]: r["join_url"] for r in zoom.registrants_of(mid, "approved")}


def added_addresses(zoom) -> Counter:
    """Each address in an add call that Zoom accepted."""
    seen = Counter()
    for c in zoom.calls:
        if c.method == "POST" and c.path.endswith("/registrants") and c.status == 201:
            seen[c.json["email"]] += 1
        elif c.path.endswith("/batch_registrants") and c.status == 200:
            seen.update(r["email"] for r in c.json["registrants"])
    return seen


def signed_up_after_three_adds_today(seminar):
    """Carla signed up, was added at Zoom and cancelled three times today, and signs up again:
    her next add hits Zoom's daily limit of three per address."""
    again = SignUpData(name="Carla Smit", email="carla@gastouder.example", organisation="Gastouder",
                       location_type="kdv")
    for round_ in range(3):
        reg = sign_up(seminar.id, again)
        confirm_many(seminar, 1, prefix=f"ronde{round_}")  # confirmed together: one batch
        confirm(reg.id)
        work()
        cancel(reg.id)
        work()
    return sign_up(seminar.id, again)
