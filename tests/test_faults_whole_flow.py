"""Faults across the whole flow: the database briefly unavailable (PostgreSQL), SMTP down, the
video platform down, a worker killed while holding work. After recovery every confirmed attendee
has exactly one join mail and exactly one registrant at the platform, and nobody is lost."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from seminar.extensions import db
from seminar.models import Job, Registration
from seminar.jobs.runner import claim
from seminar.jobs.worker import run_due
from seminar.timeutil import utcnow

from .helpers import Person, links_in
from .standins.zoom import ZoomStandIn
from .test_database_outage import cut_connections
from .video_kit import zoom_config

SEATS, PEOPLE = 6, 9


@pytest.fixture
def zoom():
    with ZoomStandIn() as stand_in:
        yield stand_in
        stand_in.assert_clean()


@pytest.fixture
def app_config(zoom, db_url):
    if not db_url.startswith("postgresql"):
        return zoom_config(zoom)
    # Named connections, so the test can cut exactly these at the server.
    return zoom_config(zoom, SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "connect_args": {"application_name": "seminar-outage-test"}})


@pytest.fixture
def app(smtp_app):
    return smtp_app


def worker_round(now=None):
    """One round of the worker loop, which survives a database that went away (as run_forever)."""
    try:
        return run_due(now=now)
    except OperationalError:
        db.session.rollback()
        return -1


def test_everything_fails_then_recovers_and_nobody_is_lost(app, client, smtp, zoom, make_seminar, db_url):
    seminar = make_seminar(capacity=SEATS)
    run_due()  # the meeting is created at Zoom
    meeting_id = db.session.get(type(seminar), seminar.id).meeting_id
    assert meeting_id

    people = [Person(client, name=f"Deelnemer {i}", email=f"deelnemer{i}@kinderopvang.example")
              for i in range(PEOPLE)]
    for p in people:
        assert p.sign_up(seminar).status_code == 303
    run_due()
    confirm_links = {p.data["email"]: links_in(smtp.recorder.to(p.data["email"])[-1])["confirm"] for p in people}

    # Everything goes wrong at once.
    smtp.stop()
    zoom.fail_next(10_000, status=503)
    for p in people:
        assert p.press_button(confirm_links[p.data["email"]]).status_code == 303
    assert claim("worker-that-was-killed"), "the killed worker held some of the work"
    if db_url.startswith("postgresql"):
        assert cut_connections() >= 1  # the database drops every connection
    assert worker_round() in (-1, 0)  # nothing due that could succeed
    worker_round()
    assert Counter(m["Subject"].split(":")[0] for m in smtp.messages)["Je plaats is bevestigd"] == 0

    # Recovery: SMTP and Zoom are back; time passes (leases run out, backoffs end).
    zoom.clear_faults()
    smtp.start()
    for hours in (1, 2, 4, 8, 16, 24, 48):
        worker_round(now=utcnow() + timedelta(hours=hours))

    db.session.rollback()
    regs = db.session.scalars(db.select(Registration)).all()
    assert Counter(r.status for r in regs) == {"confirmed": SEATS, "waitlisted": PEOPLE - SEATS}
    confirmed = sorted(r.email for r in regs if r.status == "confirmed")
    join_mails = Counter(m.envelope_to[0] for m in smtp.messages if "join" in links_in(m))
    assert join_mails == Counter(confirmed)  # exactly one join mail each, only for seats
    at_zoom = Counter(r["email"] for r in zoom.registrants_of(meeting_id, status="approved"))
    assert at_zoom == Counter(confirmed)  # exactly one registrant each
    waitlist_mails = Counter(m.envelope_to[0] for m in smtp.messages if "wachtlijst" in m["Subject"])
    assert waitlist_mails == Counter(r.email for r in regs if r.status == "waitlisted")
    assert db.session.scalars(db.select(Job.kind).where(Job.state.in_(("claimed", "failed")))).all() == []
    overdue = db.select(Job.kind).where(Job.state == "pending", Job.due_at <= utcnow() + timedelta(hours=48))
    assert db.session.scalars(overdue).all() == []  # only future work (reminders, digests) waits
    # Each join link leads to that attendee's own Zoom link.
    for reg in regs:
        if reg.status == "confirmed":
            [mail] = [m for m in smtp.recorder.to(reg.email) if "join" in links_in(m)]
            target = client.get(links_in(mail)["join"].replace("http://seminar.test", "")).headers["Location"]
            [registrant] = [r for r in zoom.registrants_of(meeting_id) if r["email"] == reg.email]
            assert target == registrant["join_url"]
