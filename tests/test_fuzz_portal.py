"""Generated input for the portal (hypothesis, on both databases): every portal URL with integer
extremes in its ids, every text field of the portal's forms and searches with every Unicode
category. Nothing answers 500."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from seminar.extensions import db
from seminar.models import Seminar

from .helpers import csrf_from
from .portal_helpers import Staff, attendee, make_user
from .test_fuzz import FORM, FUZZ, anything, form_body

PORTAL_FUZZ = settings(FUZZ, max_examples=600)
OK = {200, 302, 303, 400, 403, 404, 405, 409, 410}
EXTREMES = ["0", "1", "2147483647", "2147483648", "4294967296", "9007199254740993",
            "9223372036854775807", "9223372036854775808", "18446744073709551616", "1" + "0" * 40,
            "-1", "00", "1e3", "0x10", "１"]  # the last one a full-width digit


def portal_rules(app) -> list:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("manage.")]


@pytest.fixture
def portal(client, make_seminar):
    """A seminar with one attendee, and an organiser logged in: (seminar, staff)."""
    seminar = make_seminar()
    attendee(seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    make_user("org@bmk.example")
    return seminar, Staff(client, "org@bmk.example").logged_in()


def test_every_portal_url_with_integer_extremes(app, client, portal):
    seminar, staff = portal
    token = csrf_from(staff.text("/manage/"))
    checked = 0
    for rule in portal_rules(app):
        ints = [name for name, conv in rule._converters.items() if conv.__class__.__name__ == "DatabaseId"]
        if not ints:
            continue
        for number in EXTREMES:
            values = {name: number for name in ints}
            if "fmt" in rule.arguments:
                values["fmt"] = "csv"
            path = rule.rule
            for name, value in values.items():
                path = path.replace(f"<int:{name}>", value).replace("<any(csv, xlsx):fmt>", value)
            for method in sorted(rule.methods & {"GET", "POST"}):
                data = {"csrf_token": token, "back": "/manage/"} if method == "POST" else None
                response = client.open(path, method=method, data=data)
                assert response.status_code in OK, (method, path, response.status_code)
                checked += 1
    assert checked > 100
    db.session.rollback()
    assert db.session.get(Seminar, seminar.id) is not None


PORTAL_FORMS = {
    "/manage/seminars/new": ["title", "start", "duration_minutes", "capacity", "speakers", "description",
                             "hosts", "reminder_hours", "digest_hours", "publish"],
    "/manage/users/new": ["email", "name", "role", "active", "invite"],
    "/manage/account": ["current", "password", "confirm"],
}
SEARCHES = ["/manage/registrations?q=", "/manage/outbox?state=", "/manage/outbox?family=",
            "/manage/outbox?seminar=", "/manage/privacy/export?email=", "/manage/privacy/erase?email=",
            "/manage/login?next=", "/manage/?lang="]


def test_every_portal_text_field_with_every_unicode_category(app, client, portal):
    seminar, staff = portal
    token = csrf_from(staff.text("/manage/seminars/new"))
    searches = SEARCHES + [f"/manage/seminars/{seminar.id}/attendees?q=",
                           f"/manage/seminars/{seminar.id}/attendees?status=",
                           f"/manage/seminars/{seminar.id}/attendees?sort="]

    @PORTAL_FUZZ
    @given(st.sampled_from(sorted(PORTAL_FORMS)), st.data())
    def post(path, data):
        fields = PORTAL_FORMS[path]
        values = data.draw(st.fixed_dictionaries({}, optional={f: anything for f in fields}))
        response = client.post(path, data=form_body(dict(values, csrf_token=token)), content_type=FORM)
        assert response.status_code in OK, (path, response.status_code)
        db.session.rollback()

    @PORTAL_FUZZ
    @given(st.sampled_from(searches), anything)
    def search(prefix, value):
        from urllib.parse import quote

        response = client.get(prefix + quote(value, safe="", errors="surrogatepass"))
        assert response.status_code in OK, (prefix, response.status_code)

    post()
    search()
    # Still logged in and working: nothing above broke the session or the database.
    assert staff.get(f"/manage/seminars/{seminar.id}/attendees").status_code == 200
