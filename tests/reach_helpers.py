"""Helpers for the interest-list tests: someone using the home page form, the list's mailed links,
and links made the way an old or foreign mail would carry them."""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from seminar.extensions import db
from seminar.reach.models import Subscriber

from .helpers import csrf_from, read_eml, text_of

LINK = re.compile(r"(https?://seminar\.test/r/list/(confirm|unsubscribe|reserve|still)/[A-Za-z0-9_.\-]+)")


def path_of(url: str) -> str:
    """The path of a mailed link (http or https), as the test client requests it."""
    return urlsplit(url).path


def list_links(msg) -> dict[str, str]:
    return {kind: url for url, kind in LINK.findall(text_of(msg))}


def subscribe(client, email: str, name: str = "", organisation: str = "", language: str = "nl",
              ip: str = "127.0.0.1", **extra):
    environ = {"REMOTE_ADDR": ip}
    page = client.get("/", environ_base=environ)
    assert page.status_code == 200
    form = dict(csrf_token=csrf_from(page.get_data(as_text=True)), email=email, name=name,
                organisation=organisation, language=language, **extra)
    return client.post("/interesse", data=form, environ_base=environ)


def subscriber(email: str) -> Subscriber | None:
    db.session.expire_all()
    return db.session.scalar(select(Subscriber).where(Subscriber.email_normalized == email.lower()))


def mails_to(app, address: str) -> list:
    return [m for m in read_eml(app) if address.lower() in m["To"].lower()]


def press(client, url: str, **data):
    """Open a mailed link and press its button (with the page's CSRF token when it has one)."""
    path = path_of(url)
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    if 'name="csrf_token"' in html:
        data.setdefault("csrf_token", csrf_from(html))
    return client.post(path, data=data)


def old_token(app, purpose: str, data: dict, age_seconds: int) -> str:
    """A token signed with the app's key as it would have been `age_seconds` ago."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"seminar.list.{purpose}",
                                  signer=Then).dumps(data)


def on_the_list(app, client, email: str, **details):
    """Someone subscribes on the home page and presses the link in the confirmation mail."""
    from .helpers import work

    assert subscribe(client, email, **details).status_code == 303
    work()
    [mail] = [m for m in mails_to(app, email) if "confirm" in list_links(m)][-1:]
    assert press(client, list_links(mail)["confirm"]).status_code == 200
    return subscriber(email)
