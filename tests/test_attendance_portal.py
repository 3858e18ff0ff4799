"""The portal after the seminar: who came (minutes, source, attended/absent, counts, chart),
corrections with who/why/when, the upload, follow-up settings with preview and hold, evaluation
results and the accreditation export; hosts see, only organisers change."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from seminar.attendance.evaluation import answer
from seminar.attendance.matching import record_attendance
from seminar.attendance.models import AttendanceCorrection
from seminar.database import write_transaction
from seminar.extensions import db
from seminar.models import AttendanceEvent, Seminar
from seminar.timeutil import to_local

from .helpers import future
from .portal_helpers import Staff, attendee, make_user
from .test_attendance_import import zoom_en
from .video_kit import fresh


@pytest.fixture
def held(app, make_seminar):
    seminar = make_seminar(title="Huiselijk geweld herkennen", start_at=future(days=2), duration_minutes=60,
                           hosts=["host@bmk.example"])
    anouk = attendee(seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    bram = attendee(seminar, "Bram Jansen", "bram@kinderopvang.example")
    s = fresh(Seminar, seminar.id)
    with write_transaction():
        record_attendance(s.id, anouk.id, "joined", s.start_at, "a", "webhook")
        record_attendance(s.id, anouk.id, "left", s.start_at + timedelta(minutes=55), "a", "webhook")
        record_attendance(s.id, None, "joined", s.start_at, "g", "webhook", guest="Onbekende Gast")
    return fresh(Seminar, s.id), anouk, bram


@pytest.fixture
def organiser(client):
    make_user("org@bmk.example", name="Olga")
    return Staff(client, "org@bmk.example").logged_in()


def test_the_attendance_page_shows_minutes_sources_counts_and_guests(held, organiser):
    seminar, anouk, bram = held
    html = organiser.text(f"/manage/seminars/{seminar.id}/aanwezigheid")
    assert "Aanwezig: 1. Afwezig: 1 (van 2 met een plaats). Minimum: 45 minuten (75 %)." in html
    assert "<svg" in html and "Onbekende Gast" in html
    assert "anouk@kinderopvang.example" in html and ">55<" in html and ">zoom<" in html
    assert f"/manage/seminars/{seminar.id}/aanwezigheid" in organiser.text(f"/manage/seminars/{seminar.id}")


def test_a_correction_is_recorded_with_who_why_and_when(held, organiser):
    seminar, anouk, bram = held
    page = f"/manage/seminars/{seminar.id}/aanwezigheid"
    action = f"{page}/{bram.id}/correctie"
    response = organiser.submit(page, {"attended": "1", "minutes": "", "reason": ""}, action=action)
    assert response.status_code == 303 and db.session.scalar(db.select(db.func.count(AttendanceCorrection.id))) == 0
    response = organiser.submit(page, {"attended": "1", "minutes": "60", "reason": "Belde in via de telefoon"},
                                action=action)
    assert response.status_code == 303
    html = organiser.text(page)
    assert "Aanwezig: 2. Afwezig: 0" in html and "gecorrigeerd door org@bmk.example" in html
    assert "Belde in via de telefoon" in html


def test_hosts_see_but_cannot_change(held, client):
    seminar, anouk, bram = held
    from seminar.accounts import set_password
    from seminar.models import User
    host = db.session.scalar(db.select(User).where(User.email == "host@bmk.example"))
    set_password(host, "een lang genoeg wachtwoord")
    db.session.commit()
    staff = Staff(client, "host@bmk.example").logged_in()
    html = staff.text(f"/manage/seminars/{seminar.id}/aanwezigheid")
    assert "anouk@kinderopvang.example" in html and "correctie" not in html
    page = f"/manage/seminars/{seminar.id}/aanwezigheid"
    assert staff.submit(page, {"attended": "1", "reason": "x"}, action=f"{page}/{bram.id}/correctie").status_code == 403
    # The follow-up preview is the organisers' (it is a mail with signed links in it).
    assert "voorbeeld/afwezig" not in html and staff.get(f"{page}/voorbeeld/afwezig").status_code == 403


def test_uploading_a_participant_list(held, organiser):
    seminar, anouk, bram = held
    page = f"/manage/seminars/{seminar.id}/aanwezigheid"
    from .helpers import csrf_from
    token = csrf_from(organiser.text(page))
    response = organiser.client.post(f"{page}/import", data={
        "csrf_token": token, "participants": (io.BytesIO(b"Naam;Organisatie\n"), "lijst.csv")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "Er is niets geïmporteerd: Geen deelnemerstabel gevonden" in response.get_data(as_text=True)
    # Encoded in memory here (the test client would spool 8 MB to a temporary file of its own).
    boundary, body = encode_multipart({"csrf_token": token,
                                       "participants": FileStorage(io.BytesIO(b"x" * (8 * 1024 * 1024)), "groot.csv")})
    response = organiser.client.post(f"{page}/import", data=body,
                                     content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413 and "Het bestand is te groot" in response.get_data(as_text=True)
    attendee(seminar, "Carla Bos", "carla@kinderopvang.example")  # the export layout has three people
    before = db.session.scalar(db.select(db.func.count(AttendanceEvent.id)))
    data = zoom_en(fresh(Seminar, seminar.id))
    response = organiser.client.post(f"{page}/import", data={"csrf_token": token, "participants": (io.BytesIO(data), "zoom.csv")},
                                     content_type="multipart/form-data", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Geïmporteerd: 3 van 4 rijen" in html and "hoort bij niemand met een plaats" in html
    assert db.session.scalar(db.select(db.func.count(AttendanceEvent.id))) > before


def test_settings_preview_and_hold(held, organiser):
    seminar, anouk, bram = held
    page = f"/manage/seminars/{seminar.id}/aanwezigheid"
    bad = organiser.submit(page, {"slides_url": "javascript:alert(1)", "min_attendance_percent": "75",
                                  "register_name": "SKJ"}, action=f"{page}/instellingen")
    assert bad.status_code == 400 and "https://" in bad.get_data(as_text=True)
    ok = organiser.submit(page, {"slides_url": "https://slides.example/a", "recording_url": "", "evaluation_url": "",
                                 "register_name": "SKJ", "course_number": "SKJ-123", "points": "2",
                                 "min_attendance_percent": "95", "follow_up_delay_minutes": "30",
                                 "follow_up_hold": "y"}, action=f"{page}/instellingen")
    assert ok.status_code == 303
    s = fresh(Seminar, seminar.id)
    assert (s.follow_up_hold, s.follow_up_delay_minutes, s.min_attendance_percent, s.course_number) == (True, 30, 95, "SKJ-123")
    preview = organiser.get(f"{page}/voorbeeld/aanwezig")
    assert preview.status_code == 404  # 55 of 60 minutes is below 95 %: nobody attended
    preview = organiser.get(f"{page}/voorbeeld/afwezig")
    assert preview.status_code == 200 and "We hebben je gemist" in preview.get_data(as_text=True)
    # Composed for a made-up person: nobody's name, nor their signed manage link.
    from seminar import tokens
    html = preview.get_data(as_text=True)
    assert "Voorbeeld Deelnemer" in html
    for reg in (anouk, bram):
        assert reg.name not in html and tokens.make_token("manage", reg) not in html
    assert db.session.scalar(db.select(db.func.count()).select_from(db.text("registration"))) == 2
    assert db.session.scalar(db.select(db.func.count()).select_from(db.text("job")).where(
        db.text("kind LIKE 'mail.follow_up%'"))) == 0  # a preview sends nothing


def test_evaluation_results_and_exports(held, organiser):
    seminar, anouk, bram = held
    answer(anouk.id, 8, 4, "Graag meer casussen")
    answer(bram.id, 6, 5, "=HYPERLINK(\"x\")")
    html = organiser.text(f"/manage/seminars/{seminar.id}/aanwezigheid")
    assert "2 antwoorden." in html and "Gemiddeld cijfer: 7.0" in html and "Graag meer casussen" in html
    data = organiser.get(f"/manage/seminars/{seminar.id}/evaluatie.csv").data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data), delimiter=";"))
    assert rows[0] == ["Cijfer (1-10)", "Bruikbaarheid (1-5)", "Opmerking"] and len(rows) == 3
    assert ["6", "5", "'=HYPERLINK(\"x\")"] in rows  # no formula reaches a spreadsheet
    s = fresh(Seminar, seminar.id)
    s.register_name, s.course_number, s.points = "SKJ", "SKJ-2027-9", "3"
    fresh_reg = db.session.get(type(anouk), anouk.id)
    fresh_reg.register_number = "123456789"
    db.session.commit()
    data = organiser.get(f"/manage/seminars/{seminar.id}/accreditatie.csv").data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data), delimiter=";"))
    assert rows[0] == ["Registratienummer", "Naam", "E-mail", "Organisatie", "Datum", "Cursusnummer", "Punten",
                       "Minuten aanwezig"]
    assert rows[1:] == [["123456789", "Anouk de Vries", "anouk@kinderopvang.example", "Kinderopvang De Boomhut",
                         to_local(seminar.start_at).strftime("%Y-%m-%d"),
                         "SKJ-2027-9", "3", "55"]]


def test_the_sign_up_form_asks_function_and_for_accredited_seminars_the_register_number(app, client, make_seminar):
    from .helpers import Person
    from seminar.models import Registration
    seminar = make_seminar(title="Geaccrediteerd seminar")
    page = client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
    assert 'name="function"' in page and 'name="register_number"' not in page
    s = fresh(Seminar, seminar.id)
    s.register_name, s.course_number = "SKJ", "SKJ-1"
    db.session.commit()
    page = client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
    assert 'name="register_number"' in page and "SKJ" in page
    person = Person(client)
    bad = person.sign_up(s, function="Aandachtsfunctionaris", register_number="<script>" + "1" * 40)
    assert bad.status_code == 400 and "Maximaal 30 tekens" in bad.get_data(as_text=True)
    bad = person.sign_up(s, function="Aandachtsfunctionaris", register_number="12<3")
    assert bad.status_code == 400
    assert person.sign_up(s, function="Aandachtsfunctionaris", register_number="SKJ 1234-56").status_code == 303
    reg = db.session.scalar(db.select(Registration))
    assert (reg.function, reg.register_number) == ("Aandachtsfunctionaris", "SKJ 1234-56")


def test_a_refused_correction_says_why_in_dutch(held, organiser):
    seminar, anouk, bram = held
    page = f"/manage/seminars/{seminar.id}/aanwezigheid"
    response = organiser.submit(page, {"attended": "1", "minutes": "500", "reason": "Belde in"},
                                action=f"{page}/{bram.id}/correctie")
    assert response.status_code == 303
    html = organiser.text(page)
    assert f"Niet gecorrigeerd: het aantal minuten moet tussen 0 en {seminar.duration_minutes} liggen" in html
    assert db.session.scalar(db.select(db.func.count(AttendanceCorrection.id))) == 0
