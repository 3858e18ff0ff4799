"""The portal's front door and its walls: logging in through the real form, and every permission
boundary between anonymous visitors, hosts and organisers."""
from __future__ import annotations

import re

import pytest

from seminar.extensions import db
from seminar.models import Registration, Seminar

from .helpers import csrf_from, future
from .portal_helpers import PASSWORD, Staff, attendee, make_user


@pytest.fixture
def organiser(client):
    make_user("organisator@bmk.example", role="organiser")
    return Staff(client, "organisator@bmk.example")


@pytest.fixture
def two_seminars(make_seminar):
    """Seminar A hosted by the host, seminar B by someone else; one attendee in each."""
    make_user("host@bmk.example", role="host")
    a = make_seminar(title="Seminar A", hosts=["host@bmk.example"])
    b = make_seminar(title="Seminar B", hosts=["ander@bmk.example"], start_at=future(days=60))
    attendee(a, "Anouk de Vries", "anouk@kdv.example")
    attendee(b, "Bram Jansen", "bram@bso.example")
    return a, b


# ---------------------------------------------------------------- logging in

def test_organiser_logs_in_through_the_form_and_out_again(client, organiser):
    response = organiser.login()
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/manage/")
    page = organiser.text("/manage/")
    assert "Seminars" in page and "organisator@bmk.example" in page

    # Log out is a POST with the page's token; afterwards the portal is closed again.
    response = organiser.press("/manage/", "/manage/logout")
    assert response.status_code == 303
    assert client.get("/manage/").status_code == 302


@pytest.mark.parametrize("email, password", [
    ("organisator@bmk.example", "verkeerd wachtwoord"),
    ("onbekend@bmk.example", PASSWORD),
])
def test_wrong_password_or_unknown_address_gives_one_clear_dutch_message(client, organiser, email, password):
    response = Staff(client, email, password).login()
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Het e-mailadres of wachtwoord klopt niet" in page
    # Nothing tells whether the address has an account.
    assert "onbekend" not in page.split("<form")[0]
    assert client.get("/manage/").status_code == 302


def test_empty_login_form_is_refused_with_field_messages(client, organiser):
    page = client.get("/manage/login")
    response = client.post("/manage/login", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 400
    assert "Vul je e-mailadres in" in response.get_data(as_text=True)


def test_switched_off_account_cannot_log_in(client, organiser):
    user = make_user("weg@bmk.example", role="host")
    user.active = False
    db.session.commit()
    response = Staff(client, "weg@bmk.example").login()
    assert response.status_code == 200
    assert "klopt niet" in response.get_data(as_text=True)


def test_cli_user_create_makes_an_account_that_can_log_in(runner, client):
    result = runner.invoke(args=["user", "create", "--email", "Nieuw@BMK.example", "--role", "host",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert Staff(client, "nieuw@bmk.example").login().status_code == 303


def test_login_redirects_back_but_never_to_another_site(client, organiser, two_seminars):
    a, _ = two_seminars
    wanted = f"/manage/seminars/{a.id}/attendees"
    response = client.get(wanted)
    assert response.status_code == 302
    assert "/manage/login?next=" in response.headers["Location"]
    assert organiser.login(next_url=wanted).headers["Location"].endswith(wanted)

    client.post("/manage/logout", data={"csrf_token": csrf_from(organiser.text("/manage/"))})
    for evil in ("//evil.example/", "https://evil.example/manage", "/\\evil.example"):
        response = organiser.login(next_url=evil)
        assert response.headers["Location"].endswith("/manage/"), evil
        client.post("/manage/logout", data={"csrf_token": csrf_from(organiser.text("/manage/"))})


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute"}])
def test_login_is_rate_limited(client, organiser):
    bad = Staff(client, "organisator@bmk.example", "fout fout fout")
    assert [bad.login().status_code for _ in range(3)] == [200, 200, 200]
    response = bad.login()
    assert response.status_code == 429
    assert "Te veel pogingen" in response.get_data(as_text=True)
    # Even the right password waits: the limit counts attempts from this client, whatever the account.
    assert organiser.login().status_code == 429


def session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_session_cookie_is_httponly_and_samesite(client, organiser):
    cookie = session_cookie(organiser.login())
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # BASE_URL is http in tests


def test_session_cookie_is_secure_when_the_site_is_served_over_https(monkeypatch, tmp_path):
    from seminar.config import load_config

    monkeypatch.setenv("BASE_URL", "https://seminars.bmk.example")
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:8000")
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("app_config", [{"SESSION_COOKIE_SECURE": True}])
def test_secure_setting_reaches_the_session_cookie(client, organiser):
    assert "Secure" in session_cookie(organiser.login())


def test_expired_session_sends_back_to_login(client, organiser):
    organiser.logged_in()
    with client.session_transaction() as session:
        session["login_at"] -= 13 * 3600
    response = client.get("/manage/")
    assert response.status_code == 302
    assert "/manage/login" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Je sessie is verlopen" in page
    assert client.get("/manage/").status_code == 302


def test_post_after_the_session_is_gone_asks_to_log_in_again(client, organiser, two_seminars):
    a, _ = two_seminars
    organiser.logged_in()
    token = csrf_from(organiser.text(f"/manage/seminars/{a.id}"))
    client.delete_cookie("session")
    response = client.post(f"/manage/seminars/{a.id}/publish", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Log opnieuw in" in response.get_data(as_text=True)


# ---------------------------------------------------------------- CSRF

def test_forms_without_csrf_token_are_refused(client, organiser, two_seminars):
    a, _ = two_seminars
    response = client.post("/manage/login", data={"email": organiser.email, "password": PASSWORD})
    assert response.status_code == 400
    organiser.logged_in()
    reg = db.session.scalar(db.select(Registration).where(Registration.seminar_id == a.id))
    for path in (f"/manage/seminars/{a.id}/cancel", f"/manage/seminars/{a.id}/edit",
                 f"/manage/seminars/{a.id}/registrations/{reg.id}/cancel", "/manage/logout",
                 "/manage/seminars/new"):
        response = client.post(path, data={"title": "x"})
        assert response.status_code == 400, path
    db.session.expire_all()
    assert db.session.get(Seminar, a.id).state == "published"
    assert db.session.get(Registration, reg.id).status == "confirmed"


# ---------------------------------------------------------------- who sees what

def portal_paths(seminar_id: int, registration_id: int) -> dict[str, str]:
    base = f"/manage/seminars/{seminar_id}"
    return {
        "overview": base, "attendees": f"{base}/attendees", "csv": f"{base}/attendees.csv",
        "xlsx": f"{base}/attendees.xlsx", "edit": f"{base}/edit", "cancel": f"{base}/cancel",
        "start": f"{base}/start",
    }


def test_anonymous_visitors_are_sent_to_the_login_page(client, two_seminars):
    a, _ = two_seminars
    reg_id = a.registrations[0].id
    for name, path in dict(portal_paths(a.id, reg_id), home="/manage/", outbox="/manage/outbox",
                           users="/manage/users", new="/manage/seminars/new").items():
        response = client.get(path)
        assert response.status_code == 302, name
        assert "/manage/login" in response.headers["Location"], name


def test_host_sees_only_the_seminars_they_host(client, two_seminars):
    a, b = two_seminars
    host = Staff(client, "host@bmk.example").logged_in()

    home = host.text("/manage/")
    assert "Seminar A" in home and "Seminar B" not in home
    assert "Anouk de Vries" in host.text(f"/manage/seminars/{a.id}/attendees")
    assert host.get(f"/manage/seminars/{a.id}/attendees.csv").status_code == 200

    # Another seminar's id, by any path, is "not found" - the same as an id that does not exist.
    for name, path in portal_paths(b.id, b.registrations[0].id).items():
        assert host.get(path).status_code == 404, name
    for name, path in portal_paths(9999, 1).items():
        assert host.get(path).status_code == 404, name
    assert "Bram Jansen" not in host.get(f"/manage/seminars/{b.id}/attendees.csv").get_data(as_text=True)


def test_host_cannot_change_anything(client, two_seminars):
    a, b = two_seminars
    host = Staff(client, "host@bmk.example").logged_in()
    token = csrf_from(host.text(f"/manage/seminars/{a.id}"))
    reg_a, reg_b = a.registrations[0], b.registrations[0]

    # Their own seminar: they may look, not change (403).
    assert host.get(f"/manage/seminars/{a.id}/edit").status_code == 403
    for path in (f"/manage/seminars/{a.id}/publish", f"/manage/seminars/{a.id}/cancel",
                 f"/manage/seminars/{a.id}/registrations/{reg_a.id}/cancel"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    # Someone else's seminar: not found.
    for path in (f"/manage/seminars/{b.id}/cancel", f"/manage/seminars/{b.id}/registrations/{reg_b.id}/cancel"):
        assert client.post(path, data={"csrf_token": token}).status_code == 404, path
    # Organiser-only pages.
    for path in ("/manage/seminars/new", "/manage/outbox", "/manage/users", "/manage/registrations?q=a"):
        assert host.get(path).status_code == 403, path

    db.session.expire_all()
    assert {s.state for s in db.session.scalars(db.select(Seminar))} == {"published"}
    assert {r.status for r in db.session.scalars(db.select(Registration))} == {"confirmed"}


def test_a_registration_id_from_another_seminar_is_not_found(client, organiser, two_seminars):
    a, b = two_seminars
    organiser.logged_in()
    reg_b = b.registrations[0]
    response = organiser.press(f"/manage/seminars/{a.id}/attendees",
                               f"/manage/seminars/{a.id}/registrations/{reg_b.id}/cancel")
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Registration, reg_b.id).status == "confirmed"


def test_organiser_sees_every_seminar(client, organiser, two_seminars):
    a, b = two_seminars
    organiser.logged_in()
    home = organiser.text("/manage/")
    assert "Seminar A" in home and "Seminar B" in home
    for seminar in (a, b):
        for name, path in portal_paths(seminar.id, 0).items():
            assert organiser.get(path).status_code == (303 if name == "start" else 200), name


def test_portal_pages_have_no_inline_script_or_style(client, organiser, two_seminars):
    a, _ = two_seminars
    organiser.logged_in()
    for path in ("/manage/", f"/manage/seminars/{a.id}", f"/manage/seminars/{a.id}/attendees",
                 f"/manage/seminars/{a.id}/edit", "/manage/seminars/new", "/manage/outbox",
                 "/manage/users", "/manage/users/new", "/manage/registrations?q=anouk",
                 "/manage/account", "/manage/outbox/1"):
        page = organiser.text(path)
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=", page, re.I), path
    client.post("/manage/logout", data={"csrf_token": csrf_from(organiser.text("/manage/"))})
    for path in ("/manage/login", "/manage/password/forgot"):
        assert not re.search(r"<script|<style|\sstyle=", client.get(path).get_data(as_text=True), re.I)
