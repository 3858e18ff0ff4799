"""The interest list: double opt-in from the home page and from the sign-up form's checkbox,
nothing revealed on a second subscribe, flood limits, one-click unsubscribe (RFC 8058)."""
from __future__ import annotations

import pytest

from seminar.extensions import db

from .helpers import Person, links_in, make_app, read_eml, text_of, work
from .reach_helpers import on_the_list, list_links, mails_to, path_of, press, subscribe, subscriber

ANOUK = "anouk@kinderopvang.example"


def confirmed_subscriber(app, client, email=ANOUK, **kw):
    return on_the_list(app, client, email, **kw)


def test_home_page_subscribe_is_double_opt_in(app, client):
    response = subscribe(client, ANOUK, name="Anouk de Vries", organisation="De Boomhut")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Controleer je mail" in page
    assert subscriber(ANOUK).status == "pending"

    work()
    [mail] = read_eml(app)
    assert mail["To"] == f"Anouk de Vries <{ANOUK}>"
    assert "Bevestig" in mail["Subject"]
    confirm = list_links(mail)["confirm"]
    # Following the link (a mail scanner) changes nothing; the button does.
    assert client.get(path_of(confirm)).status_code == 200
    assert subscriber(ANOUK).status == "pending"
    done = press(client, confirm)
    assert done.status_code == 200 and "Je staat op de lijst" in done.get_data(as_text=True)
    sub = subscriber(ANOUK)
    assert (sub.status, sub.name, sub.organisation) == ("active", "Anouk de Vries", "De Boomhut")
    assert sub.confirmed_at is not None


def test_english_subscriber_gets_english_mail(app, client):
    subscribe(client, ANOUK, language="en")
    work()
    [mail] = read_eml(app)
    assert mail["Subject"] == "Please confirm: announcements of our seminars"


def test_subscribing_twice_reveals_nothing(app, client):
    confirmed_subscriber(app, client)
    known = subscribe(client, ANOUK)
    new = subscribe(client, "nieuw@bso.example")
    assert (known.status_code, known.headers["Location"]) == (new.status_code, new.headers["Location"])
    assert client.get(known.headers["Location"]).data == client.get(new.headers["Location"]).data
    work()
    # Only the address's owner learns that it was on the list already.
    latest = mails_to(app, ANOUK)[-1]
    assert "al op de lijst" in text_of(latest)
    assert "confirm" not in list_links(latest)
    assert subscriber(ANOUK).status == "active"


def test_bad_input_on_the_home_form_is_told_in_dutch_and_kept(client):
    response = subscribe(client, "geen-adres", name="<script>")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Dit is geen geldig e-mailadres." in page
    assert 'value="geen-adres"' in page
    assert subscriber("geen-adres") is None


def test_the_refused_form_pages_links_lead_back_to_the_home_page(client):
    """After a refused POST the browser shows /interesse: its language switch and a reload are GETs
    of that address (they answered 405)."""
    assert subscribe(client, "geen-adres").status_code == 400
    english = client.get("/interesse?lang=en")
    assert english.status_code == 303 and english.headers["Location"].endswith("/?lang=en")
    assert client.get("/interesse").headers["Location"].endswith("/")
    assert client.get("/interesse?lang=<x>").headers["Location"].endswith("/")


def test_honeypot_stores_nothing(client):
    response = subscribe(client, ANOUK, website="http://spam.example")
    assert response.status_code == 303
    assert subscriber(ANOUK) is None


def test_signup_checkbox_confirms_the_list_with_the_signup(app, client, make_seminar):
    seminar = make_seminar()
    person = Person(client)
    # The box is there and not ticked.
    page = client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
    assert 'id="interest" name="interest" type="checkbox" value="y"' in page
    assert 'name="interest" type="checkbox" value="y" checked' not in page
    person.sign_up(seminar, interest="y")
    assert subscriber(ANOUK).status == "pending"
    work()
    [mail] = read_eml(app)  # one mail: the sign-up's, which says it confirms the list too
    assert "ook op die lijst" in text_of(mail)
    person.press_button(links_in(mail)["confirm"])
    sub = subscriber(ANOUK)
    assert sub.status == "active" and sub.organisation == "Kinderopvang De Boomhut"
    assert sub.location_type == "kdv"


def test_signup_without_the_box_puts_no_one_on_the_list(app, client, make_seminar):
    Person(client).sign_up(make_seminar())
    work()
    assert subscriber(ANOUK) is None
    assert "lijst" not in text_of(read_eml(app)[0])


def test_subscribe_flood_is_limited_like_the_signup_form(db_url, tmp_path):
    app = make_app(db_url, tmp_path, RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="3 per minute",
                   SIGNUP_ADDRESS_RATE_LIMIT="2 per hour")
    with app.app_context():
        db.create_all()
        client = app.test_client()
        # One address, from many client addresses: two an hour.
        codes = [subscribe(client, "doelwit@kdv.example", ip=f"198.51.100.{i}").status_code for i in range(3)]
        assert codes == [303, 303, 429]
        # One client address, many addresses: three a minute.
        codes = [subscribe(client, f"p{i}@kdv.example", ip="192.0.2.1").status_code for i in range(4)]
        assert codes == [303, 303, 303, 429]
        assert "Te veel pogingen" in subscribe(client, "p9@kdv.example", ip="192.0.2.1").get_data(as_text=True)
        assert subscribe(client, "p9@kdv.example", ip="192.0.2.2").status_code == 303
        db.session.remove()
        db.engine.dispose()


def test_box_ticked_when_already_signed_up_sends_the_list_its_own_confirmation(app, client, make_seminar):
    seminar = make_seminar()
    person = Person(client)
    person.sign_up(seminar)
    work()
    person.press_button(links_in(read_eml(app)[0])["confirm"])
    person.sign_up(seminar, interest="y")  # signed up already: no sign-up confirmation to ride on
    work()
    confirm = [list_links(m)["confirm"] for m in read_eml(app) if "confirm" in list_links(m)]
    assert len(confirm) == 1
    press(client, confirm[0])
    assert subscriber(ANOUK).status == "active"


def test_list_links_are_redacted_from_logs():
    from seminar.security import redact

    line = 'GET /r/list/unsubscribe/eyJzIjoxfQ.aw0.sig HTTP/1.1 /r/list/reserve/abc.def anouk@kdv.example'
    assert redact(line) == "GET /r/list/unsubscribe/[token] HTTP/1.1 /r/list/reserve/[token] [e-mail]"


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_list_mail_is_in_the_subscribers_language(app, make_seminar, lang):
    from seminar.jobs import kinds
    from seminar.models import Job
    from seminar.notify.mails import compose
    from seminar.reach.models import Subscriber
    from seminar.timeutil import utcnow

    from .language import Catalogue

    catalogue = Catalogue()
    seminar = make_seminar(title="Signalen herkennen", speakers="Dr. Mirjam Bakker")
    sub = Subscriber(email=ANOUK, email_normalized=ANOUK, name="Anouk", language=lang, status="pending")
    db.session.add(sub)
    db.session.flush()
    wrong, silent = {}, []
    for kind in (kind for kind in kinds.mails() if kind.to_subscribers):
        texts = []
        for status in ("pending", "active"):
            sub.status, sub.reconfirm_asked_at = status, utcnow()
            db.session.flush()
            composed = compose(Job(kind=kind.name, seminar=seminar, payload={"subscriber_id": sub.id}))
            if composed is not None:
                texts.append(f"{composed.subject}\n{composed.rendered[0]}")
        if not texts:
            silent.append(kind.name)
        found = sorted({piece for text in texts for piece in catalogue.left_in(text, lang)})
        if found:
            wrong[kind.name] = found
    db.session.rollback()
    assert silent == [] and wrong == {}


def test_an_address_removed_between_the_page_and_the_press_is_told_the_link_is_gone(app, client):
    """Erased (or lapsed by the purge) after the link was opened: the press answered a 500."""
    from seminar.reach import service

    assert service.confirm(987654) is None and service.still_interested(987654) is None
