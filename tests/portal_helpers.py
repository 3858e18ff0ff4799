"""Helpers for the portal tests: accounts, attendees, and a staff member using the portal through
the test client as in a browser (forms with their CSRF token)."""
from __future__ import annotations

from seminar.accounts import set_password
from seminar.extensions import db
from seminar.models import Registration, User
from seminar.registration.service import SignUpData, confirm, sign_up

from .helpers import csrf_from

PASSWORD = "een lang genoeg wachtwoord"


def make_user(email: str, role: str = "organiser", password: str | None = PASSWORD, name: str = "") -> User:
    user = User(email=email, role=role, name=name)
    if password:
        set_password(user, password)
    db.session.add(user)
    db.session.commit()
    return user


def attendee(seminar, name: str, email: str, organisation: str = "Kinderopvang De Boomhut",
             confirmed: bool = True, question: str = "") -> Registration:
    reg = sign_up(seminar.id, SignUpData(name=name, email=email, organisation=organisation,
                                         location_type="kdv", question=question))
    return confirm(reg.id) if confirmed else reg


class Staff:
    """An organiser or host in the browser."""

    def __init__(self, client, email: str, password: str = PASSWORD):
        self.client = client
        self.email = email
        self.password = password

    def login(self, password: str | None = None, next_url: str | None = None):
        page = self.client.get("/manage/login")
        assert page.status_code == 200, page.status_code
        url = "/manage/login" + (f"?next={next_url}" if next_url else "")
        return self.client.post(url, data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "email": self.email, "password": password or self.password,
        })

    def logged_in(self) -> "Staff":
        response = self.login()
        assert response.status_code == 303, response.get_data(as_text=True)[:2000]
        return self

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def text(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def submit(self, form_path: str, data: dict, action: str | None = None):
        """Open the page with the form, then post it with the page's CSRF token."""
        page = self.client.get(form_path)
        assert page.status_code == 200, (form_path, page.status_code)
        fields = dict(data, csrf_token=csrf_from(page.get_data(as_text=True)))
        return self.client.post(action or form_path, data=fields)

    def press(self, page_path: str, action: str, **extra):
        """Press a button (a small POST form) found on a page."""
        return self.submit(page_path, extra, action=action)
