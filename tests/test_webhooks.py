"""POST /webhooks/zoom: signed Zoom event notifications, attendance, and meetings changed at Zoom."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import pytest

from seminar.extensions import db
from seminar.models import AttendanceEvent, Job, Registration, Seminar
from seminar.programme.service import cancel_seminar, update_seminar
from seminar.video.zoom import zulu

from .helpers import future, jobs, work
from .video_kit import app_config, zoom, zoom_stays_clean  # noqa: F401  (fixtures)
from .video_kit import (ZOOM_SECRET, confirm_many, enable_logs, fresh, join_target,
                        sign_up_through_site, zoom_config)




def sign(body: bytes, timestamp: str, secret: str = ZOOM_SECRET) -> str:
    """Zoom's scheme, written out here independently of the code under test."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def deliver(client, event, *, secret: str = ZOOM_SECRET, timestamp: int | str | None = None,
            signature: str | None = None, drop: tuple = ()):
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"x-zm-request-timestamp": ts, "x-zm-signature": signature or sign(body, ts, secret),
               "Content-Type": "application/json; charset=utf-8"}
    for name in drop:
        headers.pop(name)
    return client.post("/webhooks/zoom", data=body, headers=headers)


def event(name: str, meeting_id, **obj) -> dict:
    return {"event": name, "event_ts": int(time.time() * 1000),
            "payload": {"account_id": "acct", "object": {"id": str(meeting_id), "uuid": "4444AAAiAAAAAiAiAiiAii==",
                                                         "host_id": "x1yCzABCDEfg", "type": 2, **obj}}}


def participant(meeting_id, name: str, when, reg: Registration | None, **extra) -> dict:
    person = {"user_id": "16778240", "user_name": "Anouk de Vries", "id": "iFxeBPYun6SAiWUzBcEkX",
              "participant_uuid": "55555AAAiAAAAAiAiAiiAii", "email": "anouk@kinderopvang.example",
              "join_time" if name.endswith("joined") else "leave_time": zulu(when), **extra}
    if reg is not None:
        person["registrant_id"] = reg.platform_registrant_id
    return event(name, meeting_id, topic="Seminar", participant=person)


@pytest.fixture
def live(app, zoom, make_seminar):
    """A published seminar with its Zoom meeting and one confirmed attendee."""
    seminar = make_seminar()
    work()
    [reg_id] = confirm_many(seminar, 1)
    work()
    seminar = fresh(Seminar, seminar.id)
    return seminar, int(seminar.meeting_id), fresh(Registration, reg_id)


# ---------------------------------------------------------------- refusals

def test_url_validation_is_answered(client):
    response = deliver(client, {"event": "endpoint.url_validation", "event_ts": 1,
                                "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}})
    assert response.status_code == 200
    expected = hmac.new(ZOOM_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert response.get_json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


@pytest.mark.parametrize("how,expected,said", [
    ({"drop": ("x-zm-signature",)}, 401, "missing"),
    ({"drop": ("x-zm-request-timestamp",)}, 401, "missing"),
    ({"signature": "v0=" + "0" * 64}, 401, "does not match"),
    ({"secret": "someone-elses-secret"}, 401, "does not match"),
    ({"timestamp": int(time.time()) - 301}, 401, "stale"),
    ({"timestamp": int(time.time()) + 3600}, 401, "stale"),
    ({"timestamp": "yesterday"}, 401, "not a number"),
])
def test_bad_or_missing_signatures_are_refused(client, live, caplog, how, expected, said):
    seminar, mid, reg = live
    caplog.set_level(logging.INFO, "seminar.webhooks")
    response = deliver(client, participant(mid, "meeting.participant_joined", seminar.start_at, reg), **how)
    assert response.status_code == expected
    assert said in caplog.text
    assert db.session.scalar(db.select(db.func.count(AttendanceEvent.id))) == 0


def test_a_huge_body_is_refused_unread(client, caplog):
    huge = json.dumps({"event": "meeting.updated", "padding": "x" * (70 * 1024)}).encode()
    response = deliver(client, huge)
    assert response.status_code == 413 and "larger than" in caplog.text


@pytest.mark.parametrize("body,said", [(b"<html>not json</html>", "not JSON"), (b'["a list"]', "no event"),
                                       (b'{"payload": {}}', "no event")])
def test_malformed_signed_bodies_are_refused(client, caplog, body, said):
    assert deliver(client, body).status_code == 400 and said in caplog.text


def test_unknown_events_get_a_200_and_a_log_line(client, caplog):
    caplog.set_level(logging.INFO, "seminar.webhooks")
    response = deliver(client, {"event": "recording.completed", "event_ts": 1, "payload": {}})
    assert response.status_code == 200 and "recording.completed ignored" in caplog.text


def test_without_a_configured_secret_nothing_is_accepted(app, client):
    app.config["ZOOM_WEBHOOK_SECRET_TOKEN"] = None
    response = deliver(client, {"event": "endpoint.url_validation", "payload": {"plainToken": "x"}})
    assert response.status_code == 503


# ---------------------------------------------------------------- attendance

@pytest.mark.parametrize("family", ["meeting", "webinar"])
def test_joins_and_leaves_are_recorded_once_without_personal_data_in_logs(client, live, caplog, family):
    seminar, mid, reg = live
    caplog.set_level(logging.INFO)
    joined = participant(mid, f"{family}.participant_joined", seminar.start_at, reg)
    left = participant(mid, f"{family}.participant_left", seminar.start_at + timedelta(minutes=80), reg)
    assert deliver(client, joined).get_json() == {"status": "recorded"}
    assert deliver(client, joined).get_json() == {"status": "already recorded"}  # Zoom retried
    assert deliver(client, left).status_code == 200

    rows = db.session.scalars(db.select(AttendanceEvent).order_by(AttendanceEvent.id)).all()
    assert [(r.event, r.registration_id, r.at, r.source) for r in rows] == [
        ("joined", reg.id, seminar.start_at, "webhook"),
        ("left", reg.id, seminar.start_at + timedelta(minutes=80), "webhook")]
    assert "anouk" not in caplog.text.lower() and "@" not in caplog.text


def test_an_unknown_meeting_is_acknowledged_and_ignored(client, live):
    seminar, mid, reg = live
    response = deliver(client, participant(123456789, "meeting.participant_joined", seminar.start_at, None))
    assert response.status_code == 200 and response.get_json() == {"status": "unknown meeting"}
    assert db.session.scalar(db.select(db.func.count(AttendanceEvent.id))) == 0


def test_a_guest_without_registrant_id_is_counted_without_a_registration(client, live):
    seminar, mid, reg = live
    deliver(client, participant(mid, "meeting.participant_joined", seminar.start_at, None,
                                participant_uuid="guest-1"))
    [row] = db.session.scalars(db.select(AttendanceEvent)).all()
    assert row.registration_id is None and row.participant_id == "guest-1"


def test_attendance_from_zoom_report_after_the_seminar(app, zoom, make_seminar):
    start = future(days=2)
    seminar = make_seminar(start_at=start, duration_minutes=60)
    work()
    [reg_id] = confirm_many(seminar, 1)
    work()
    reg, mid = fresh(Registration, reg_id), int(fresh(Seminar, seminar.id).meeting_id)
    zoom.add_participant(mid, reg.name, reg.email, start, start + timedelta(minutes=55),
                         registrant_id=reg.platform_registrant_id)
    zoom.add_participant(mid, "Gast", "gast@example.com", start + timedelta(minutes=5),
                         start + timedelta(minutes=20))

    work(now=start + timedelta(minutes=90))  # not yet: the report needs time
    assert jobs("video.attendance") == []
    work(now=start + timedelta(hours=3))
    [job] = jobs("video.attendance")
    assert job.state == "done"
    rows = db.session.scalars(db.select(AttendanceEvent).order_by(AttendanceEvent.at, AttendanceEvent.id)).all()
    assert [(r.event, r.registration_id, r.source) for r in rows] == [
        ("joined", reg_id, "report"), ("joined", None, "report"),
        ("left", None, "report"), ("left", reg_id, "report")]
    work(now=start + timedelta(hours=30))
    assert len(jobs("video.attendance")) == 1  # once per seminar


# ---------------------------------------------------------------- meetings changed at Zoom

def test_a_meeting_changed_at_zoom_is_put_back(client, zoom, live):
    seminar, mid, reg = live
    zoom.meetings[mid]["start_time"] = zulu(seminar.start_at + timedelta(hours=5))  # edited by hand
    response = deliver(client, event("meeting.updated", mid, start_time=zoom.meetings[mid]["start_time"]))
    assert response.get_json() == {"status": "check queued"}
    work()
    assert zoom.meetings[mid]["start_time"] == zulu(seminar.start_at)
    assert len([c for c in zoom.calls if c.method == "PATCH"]) == 1

    # Our own reschedule comes back as meeting.updated too: it matches, nothing more is sent.
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=1))
    work()
    deliver(client, event("meeting.updated", mid, start_time=zoom.meetings[mid]["start_time"]))
    work()
    assert len([c for c in zoom.calls if c.method == "PATCH"]) == 2


def test_a_meeting_deleted_at_zoom_is_made_anew(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()
    mid = int(fresh(Seminar, seminar.id).meeting_id)
    zoom.deleted[mid] = zoom.meetings.pop(mid)

    assert deliver(client, event("meeting.deleted", mid)).get_json() == {"status": "check queued"}
    assert "deleted at Zoom" in fresh(Seminar, seminar.id).platform_error  # organisers see it at once
    work()
    new = int(fresh(Seminar, seminar.id).meeting_id)
    assert new != mid and new in zoom.meetings
    url = {r["email"]: r["join_url"] for r in zoom.registrants_of(new, "approved")}["anouk@kinderopvang.example"]
    assert join_target(client, app, "anouk@kinderopvang.example") == url


def test_our_own_delete_coming_back_changes_nothing(client, zoom, live):
    seminar, mid, reg = live
    cancel_seminar(seminar.id)
    work()
    assert deliver(client, event("meeting.deleted", mid)).get_json() == {"status": "deleted by us"}
    assert db.session.scalar(db.select(db.func.count(Job.id)).where(Job.kind == "video.check_meeting")) == 0
