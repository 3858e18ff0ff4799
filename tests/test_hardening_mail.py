"""Issue 14 (hardening, second round), the findings about what a person types ending up in mails:
1 phishing links in names, 5 encoded-word names, 6 address-like names in To:, 7 international
addresses. Each test sends through the real SMTP server and reads what arrived."""
from __future__ import annotations

from email.utils import getaddresses

import pytest

from seminar.extensions import db
from seminar.models import Job, Registration
from seminar.registration.service import SignUpData, sign_up

from .helpers import Person, links_in, text_of, work


@pytest.fixture
def app(smtp_app):
    return smtp_app


@pytest.fixture
def seminar(make_seminar):
    return make_seminar(capacity=5)


def stored_sign_up(seminar, name, email="slachtoffer@kinderopvang.example", organisation="KDV Zon"):
    """A registration as an older version of the form (or another way in) stored it."""
    return sign_up(seminar.id, SignUpData(name=name, email=email, organisation=organisation,
                                          location_type="kdv"))


def html_of(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


def raw_to_addresses(msg) -> list[tuple[str, str]]:
    """The To: header as a common parser reads its raw text (no RFC 2047 decoding first)."""
    raw = msg.as_bytes().split(b"\n\n", 1)[0].decode("ascii")
    unfolded = raw.replace("\n ", " ").replace("\n\t", " ")
    line = next(line for line in unfolded.splitlines() if line.lower().startswith("to:"))
    return getaddresses([line[3:]])


# ---------------------------------------------------------------- 1: no links from names

@pytest.mark.parametrize("field, value", [
    ("name", "Log in op https://evil.example/inlog"),
    ("name", "Ga naar www.evil.example"),
    ("name", "Mail naar hulp@evil.example"),
    ("name", "Zie evil.nl"),
    ("organisation", "Inloggen: http://evil.example"),
    ("organisation", "KDV (evil.example/inlog)"),
])
def test_names_with_web_or_mail_addresses_are_refused_in_dutch(person, seminar, field, value):
    response = person.sign_up(seminar, **{field: value})
    assert response.status_code == 400
    assert "Webadressen en e-mailadressen kunnen hier niet" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == 0


def test_a_stored_name_with_a_link_is_text_in_the_mail(smtp, seminar):
    stored_sign_up(seminar, "Log in op https://evil.example/inlog")
    work()
    [msg] = smtp.messages
    html = html_of(msg)
    assert "https://evil.example/inlog" in html  # shown as the text it is
    assert 'href="https://evil.example' not in html
    # The site's own links are still links.
    assert '<a href="http://seminar.test/r/confirm/' in html


# ---------------------------------------------------------------- 5: encoded-word names

def test_an_encoded_word_name_is_text_and_never_locks_the_address_out(client, smtp, seminar):
    name = "=?utf-8?q?X=0D=0AY?="
    stored_sign_up(seminar, name)
    work()
    [msg] = smtp.recorder.to("slachtoffer@kinderopvang.example")
    assert [a.addr_spec for a in msg["To"].addresses] == ["slachtoffer@kinderopvang.example"]
    assert f"Beste {name}," in text_of(msg)  # taken literally, never decoded
    assert db.session.scalar(db.select(db.func.count(Job.id)).where(Job.state == "failed")) == 0

    # The address's owner signs up themselves: their details count, and they can confirm.
    owner = Person(client, name="Sanne Slachtoffer", email="slachtoffer@kinderopvang.example")
    assert owner.sign_up(seminar).status_code == 303
    work()
    mail = smtp.recorder.to("slachtoffer@kinderopvang.example")[-1]
    assert "Beste Sanne Slachtoffer," in text_of(mail)
    assert mail["To"].addresses[0].display_name == "Sanne Slachtoffer"
    owner.press_button(links_in(mail)["confirm"])
    assert db.session.scalar(db.select(Registration.status)) == "confirmed"


# ---------------------------------------------------------------- 6: one recipient in To:

@pytest.mark.parametrize("name", [
    "Zoë: evil@evil.example;",
    "Jan: evil@evil.example;",
    'Jan "evil@evil.example" <evil@evil.example>,',
    "Ĳsselmeer, Zoë",
    "Zoë de Vries " * 6 + "en co, evil@evil.example",
])
def test_the_display_name_is_quoted_or_encoded_whole(smtp, seminar, name):
    stored_sign_up(seminar, name)
    work()
    [msg] = smtp.messages
    assert msg.envelope_to == ["slachtoffer@kinderopvang.example"]
    # (Python 3.11's folder may put a space where it splits a long encoded name: spaces aside.)
    assert [(a.display_name.replace(" ", ""), a.addr_spec) for a in msg["To"].addresses] == [
        (name.replace(" ", ""), "slachtoffer@kinderopvang.example")]
    addresses = [addr for _, addr in raw_to_addresses(msg) if addr]
    assert addresses == ["slachtoffer@kinderopvang.example"]


# ---------------------------------------------------------------- 7: international addresses

def test_an_address_that_cannot_be_delivered_is_refused_at_the_form(person, seminar):
    response = person.sign_up(seminar, email="\u0430lice@kinderopvang.example")  # Cyrillic а
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "speciale letters vóór de @" in page
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == 0


def test_an_international_domain_is_stored_and_mailed_in_its_ascii_form(client, smtp, seminar):
    person = Person(client, email="anouk@kinderopvang-zoë.example")
    assert person.sign_up(seminar).status_code == 303
    work()
    reg = db.session.scalar(db.select(Registration))
    assert reg.email == "anouk@xn--kinderopvang-zo-mob.example"
    [msg] = smtp.messages
    assert msg.envelope_to == ["anouk@xn--kinderopvang-zo-mob.example"]
    assert db.session.scalar(db.select(Job.state).where(Job.kind == "mail.confirm_address")) == "done"


def test_a_mail_that_cannot_be_built_fails_clearly_and_alone(client, smtp, seminar):
    """An address stored before the form's checks (a line break in it) cannot make a To: header:
    that one mail is a clear failure in the outbox at once, every other mail goes out."""
    stored_sign_up(seminar, "Oude Inschrijving", email="oud\n@kinderopvang.example")
    stored_sign_up(seminar, "Anouk de Vries", email="anouk@kinderopvang.example")
    work()
    assert [m.envelope_to for m in smtp.messages] == [["anouk@kinderopvang.example"]]
    failed = db.session.scalars(db.select(Job).where(Job.state == "failed")).all()
    assert len(failed) == 1 and failed[0].attempts == 1
    assert "could not be built" in failed[0].last_error and "oud" not in failed[0].last_error
