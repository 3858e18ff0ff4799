"""Issue 14 (hardening, second round): 2 control characters, 3 no personal data in database
errors, 11 no 500s in the portal for huge ids or CR/LF in redirects, 12 links never built from a
forged Host or query parameter."""
from __future__ import annotations

import io
import logging

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from seminar.extensions import db
from seminar.models import Registration

from .helpers import csrf_from
from .portal_helpers import Staff, attendee, make_user


def stored() -> int:
    return db.session.scalar(db.select(db.func.count(Registration.id)))


CONTROL = "Haal de onzichtbare tekens of stuurtekens uit dit veld."


# ---------------------------------------------------------------- 2: control characters

@pytest.mark.parametrize("field, value", [
    ("name", "Anouk\x1b[31m de Vries"),           # ESC: a terminal escape sequence
    ("name", "Anouk\x07"),                         # BEL
    ("name", "Anouk\x9b31m"),                      # C1 CSI
    ("name", "Anouk \u202egnidaol"),               # bidi override
    ("name", "An\u200bouk"),                       # zero width space
    ("name", "Anouk\u2066x\u2069"),                # bidi isolate
    ("organisation", "KDV\x1b]0;titel\x07 Zon"),
    ("organisation", "KDV\u200d Zon"),
    ("question", "Mag ik\x1b[2J iets vragen?"),
    ("question", "Vraag\x07"),
    ("question", "Vraag \u202e?"),
    ("email", "anouk\x1b@kinderopvang.example"),
])
def test_control_and_invisible_characters_are_refused_in_dutch(person, make_seminar, field, value):
    seminar = make_seminar()
    response = person.sign_up(seminar, **{field: value})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert CONTROL in page or "Dit is geen geldig e-mailadres." in page
    assert 'value="Kinderopvang De Boomhut"' in page or field == "organisation"  # input kept
    assert stored() == 0


def test_newlines_and_tabs_in_the_question_are_fine(person, make_seminar):
    seminar = make_seminar()
    response = person.sign_up(seminar, question="Eerste regel\r\nTweede\tregel")
    assert response.status_code == 303
    assert db.session.scalar(db.select(Registration.question)) == "Eerste regel\r\nTweede\tregel"


@pytest.mark.parametrize("field", ["name", "organisation", "question", "email", "location_type"])
def test_nul_anywhere_is_a_clear_400_on_both_databases(person, make_seminar, field):
    seminar = make_seminar()
    response = person.sign_up(seminar, **{field: "iets\x00anders"})
    assert response.status_code == 400
    assert stored() == 0


def test_exports_neutralise_what_older_rows_hold(app, client, runner, make_seminar):
    seminar = make_seminar()
    # Stored before the form refused these (the service takes what it is given).
    attendee(seminar, "Oud\x1b[31m Rood\u202e", "oud@kinderopvang.example",
             organisation="KDV\x07", question="Vraag\x1b]0;x\x07\r\nregel\x0btwee")
    make_user("org@bmk.example")
    staff = Staff(client, "org@bmk.example").logged_in()

    xlsx = staff.get(f"/manage/seminars/{seminar.id}/attendees.xlsx")
    assert xlsx.status_code == 200
    row = [c.value for c in load_workbook(io.BytesIO(xlsx.data)).active[2]]
    assert row[0] == "Oud\ufffd[31m Rood\ufffd" and row[2] == "KDV\ufffd"
    assert row[7] == "Vraag\ufffd]0;x\ufffd\nregel\ufffdtwee"

    csv_body = staff.get(f"/manage/seminars/{seminar.id}/attendees.csv").get_data(as_text=True)
    result = runner.invoke(args=["seminar", "attendees", str(seminar.id)])
    assert result.exit_code == 0
    for out in (csv_body, result.output):
        assert "Oud\ufffd[31m Rood\ufffd" in out
        assert not any(ch in out for ch in "\x1b\x07\x0b\u202e")


# ---------------------------------------------------------------- 3: no values in database errors

def test_database_errors_never_carry_the_values(app, caplog, make_seminar):
    seminar = make_seminar()
    reg = attendee(seminar, "Geheime Naam", "geheim@kinderopvang.example", question="Mijn vraag")
    with pytest.raises(DBAPIError) as failure:
        # A duplicate primary key: an error on both databases, with the values as parameters.
        db.session.execute(text(
            "INSERT INTO registration (id, seminar_id, name, email, email_normalized, organisation,"
            " location_type, question, language, consent_at, status, created_at, signed_up_at,"
            " confirm_mails, ical_uid, ical_sequence) VALUES (:id, :s, :name, :email, :email,"
            " 'KDV', 'kdv', :q, 'nl', :now, 'cancelled', :now, :now, 0, 'u', 0)"),
            {"id": reg.id, "s": seminar.id, "name": "Geheime Naam", "email": "geheim@kinderopvang.example",
             "q": "Mijn vraag", "now": reg.created_at})
    db.session.rollback()
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(failure.value)
    assert "Mijn vraag" not in str(failure.value).split("DETAIL")[0]

    # What the web's error handler logs: no values, also not PostgreSQL's own detail of the row
    # ("Failing row contains (…)") for a column that must not be empty.
    @app.get("/_test_db_error")
    def db_error():
        db.session.execute(text("UPDATE registration SET name = :n, location_type = NULL WHERE id = :id"),
                           {"n": "Geheime Naam", "id": reg.id})
    with caplog.at_level(logging.INFO):
        assert app.test_client().get("/_test_db_error").status_code in (500, 503)
    assert "database error" in caplog.text or "database unavailable" in caplog.text
    for value in ("Geheime Naam", "geheim@", "Mijn vraag"):
        assert value not in caplog.text, value


# ---------------------------------------------------------------- 11: no 500s in the portal
# (2147483648: one beyond PostgreSQL's INTEGER, which the id columns are.)

HUGE = ["2147483648", "9223372036854775808", "99999999999999999999999999", "18446744073709551616"]


@pytest.mark.parametrize("number", HUGE)
def test_ids_beyond_64_bits_are_404(client, make_seminar, number):
    seminar = make_seminar()
    make_user("org@bmk.example")
    staff = Staff(client, "org@bmk.example").logged_in()
    token = csrf_from(staff.text("/manage/"))
    for path in (f"/manage/seminars/{number}", f"/manage/seminars/{number}/attendees",
                 f"/manage/seminars/{number}/attendees.csv", f"/manage/outbox/{number}",
                 f"/manage/outbox/{number}/preview", f"/manage/users/{number}"):
        assert staff.get(path).status_code == 404, path
    for path in (f"/manage/seminars/{number}/publish", f"/manage/outbox/{number}/resend",
                 f"/manage/users/{number}/invite",
                 f"/manage/seminars/{seminar.id}/registrations/{number}/cancel"):
        assert client.post(path, data={"csrf_token": token}).status_code == 404, path
    assert staff.get(f"/manage/outbox?seminar={number}").status_code == 200
    assert staff.get(f"/manage/seminars/{seminar.id}").status_code == 200  # a normal id still works


def test_cr_lf_in_next_and_back_is_400(client, make_seminar):
    seminar = make_seminar()
    reg = attendee(seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    make_user("org@bmk.example")
    staff = Staff(client, "org@bmk.example")
    assert staff.login(next_url="/manage/%0d%0aSet-Cookie:x=1").status_code == 400
    staff.logged_in()
    response = staff.press(f"/manage/seminars/{seminar.id}/attendees",
                           f"/manage/seminars/{seminar.id}/registrations/{reg.id}/cancel",
                           back=f"/manage/seminars/{seminar.id}/attendees\r\nSet-Cookie: x=1")
    assert response.status_code == 400
    assert "x=1" not in str(response.headers)


# ---------------------------------------------------------------- 12: language link and Host

def test_the_language_link_takes_only_lang(client, make_seminar):
    seminar = make_seminar()
    page = client.get(f"/seminars/{seminar.slug}?_external=1&_scheme=https&_anchor=x&lang=nl",
                      headers={"Host": "localhost"}).get_data(as_text=True)
    assert f'href="/seminars/{seminar.slug}?lang=en"' in page
    assert "https://localhost" not in page and "#x" not in page


def test_unknown_host_headers_are_refused(client, make_seminar):
    make_seminar()
    response = client.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "Onbekend adres" in response.get_data(as_text=True)
    assert client.get("/", headers={"Host": "localhost"}).status_code == 200
    assert client.get("/", headers={"Host": "seminar.test"}).status_code == 200  # BASE_URL's host
