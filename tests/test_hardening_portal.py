"""Issue 14, portal findings: 8 logout (and a password change) end the session on the server
side too; 9 every login attempt costs the same (one scrypt check of the same cost)."""
from __future__ import annotations

import pytest
from werkzeug.security import generate_password_hash

from seminar.extensions import db
from seminar.manage import auth
from seminar.models import User

from .helpers import csrf_from
from .portal_helpers import PASSWORD, Staff, make_user


def copy_session(client, app):
    """A second browser holding a copy of this browser's session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_a_session_cookie_copied_before_logout_opens_nothing(app, client, make_seminar):
    seminar = make_seminar()
    make_user("org@bmk.example")
    staff = Staff(client, "org@bmk.example").logged_in()
    path = f"/manage/seminars/{seminar.id}/attendees"
    assert staff.get(path).status_code == 200
    copied = copy_session(client, app)
    assert copied.get(path).status_code == 200  # a copy works while the session lasts

    token = csrf_from(staff.text("/manage/"))
    assert client.post("/manage/logout", data={"csrf_token": token}).status_code == 303
    response = copied.get(path)
    assert response.status_code == 302 and "/manage/login" in response.headers["Location"]
    # Logging in again works, and only the new session does.
    Staff(client, "org@bmk.example").logged_in()
    assert staff.get(path).status_code == 200
    assert copied.get(path).status_code == 302


def test_a_password_change_ends_copies_of_the_session(app, client, make_seminar):
    seminar = make_seminar()
    make_user("org@bmk.example")
    staff = Staff(client, "org@bmk.example").logged_in()
    path = f"/manage/seminars/{seminar.id}"
    copied = copy_session(client, app)
    response = staff.submit("/manage/account", {"current": PASSWORD, "password": "een nieuw wachtwoord",
                                                "confirm": "een nieuw wachtwoord"})
    assert response.status_code == 303
    assert staff.get(path).status_code == 200  # this session goes on
    assert copied.get(path).status_code == 302


@pytest.fixture
def scrypt_checks(monkeypatch):
    """The password hashes each login attempt checks against (the real check still runs)."""
    seen: list[str] = []
    real = auth.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        seen.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(auth, "check_password_hash", spy)
    return seen


def test_every_login_attempt_costs_one_check_of_the_same_cost(client, scrypt_checks):
    make_user("org@bmk.example")
    make_user("zonder@bmk.example", role="host", password=None)
    off = make_user("uit@bmk.example", role="host")
    off.active = False
    db.session.commit()
    cost = generate_password_hash("x", method="scrypt").split("$", 1)[0]
    assert db.session.scalar(db.select(User.password_hash).where(User.email == "org@bmk.example")).startswith(cost)

    attempts = [
        ("onbekend@bmk.example", PASSWORD, 200),   # no such account
        ("zonder@bmk.example", PASSWORD, 200),     # an account without a password yet
        ("uit@bmk.example", PASSWORD, 200),        # switched off
        ("org@bmk.example", "verkeerd wachtwoord", 200),
        ("org@bmk.example", PASSWORD, 303),
    ]
    for email, password, expected in attempts:
        scrypt_checks.clear()
        response = Staff(client, email).login(password=password)
        assert response.status_code == expected, email
        assert scrypt_checks == [cost], (email, scrypt_checks)
