"""Export and erasure of one person's data from the organiser portal (AVG requests)."""
from __future__ import annotations

import json

from seminar.extensions import db
from seminar.models import PurgeLog, Registration

from .portal_helpers import Staff, attendee, make_user


def test_organiser_exports_and_erases_one_person(client, make_seminar):
    make_user("org@bmk.example", "organiser")
    seminar = make_seminar(capacity=1)
    first = attendee(seminar, "Anouk de Vries", "anouk@kdv.example")
    waiting = attendee(seminar, "Bram Jansen", "bram@bso.example")
    staff = Staff(client, "org@bmk.example").logged_in()

    listing = staff.text("/manage/registrations?q=anouk")
    assert "/manage/privacy/export?email=anouk@kdv.example" in listing
    export = staff.get("/manage/privacy/export?email=anouk@kdv.example")
    assert export.status_code == 200 and export.mimetype == "application/json"
    assert json.loads(export.data)["registrations"][0]["name"] == "Anouk de Vries"

    page = staff.text("/manage/privacy/erase?email=anouk@kdv.example")
    assert seminar.title in page
    done = staff.press("/manage/privacy/erase?email=anouk@kdv.example", "/manage/privacy/erase",
                       email="anouk@kdv.example")
    assert done.status_code == 303
    db.session.rollback()
    assert db.session.get(Registration, first.id).status == "purged"
    assert db.session.get(Registration, first.id).name == ""
    assert db.session.get(Registration, waiting.id).status == "confirmed"  # the seat moved on
    assert db.session.scalar(db.select(PurgeLog.registrations).where(PurgeLog.reason == "request")) == 1
    assert "<td>anouk@kdv.example</td>" not in staff.text("/manage/registrations?q=anouk")


def test_hosts_cannot_export_or_erase(client, make_seminar):
    make_user("host@bmk.example", "host")
    seminar = make_seminar()
    attendee(seminar, "Anouk de Vries", "anouk@kdv.example")
    staff = Staff(client, "host@bmk.example").logged_in()
    assert staff.get("/manage/privacy/export?email=anouk@kdv.example").status_code == 403
    assert staff.get("/manage/privacy/erase?email=anouk@kdv.example").status_code == 403
    anonymous = client.application.test_client()
    assert anonymous.get("/manage/privacy/export?email=anouk@kdv.example").status_code in (302, 303)
