"""The one-press reserve link in an announcement: GET changes nothing; the POST seats once;
a second press, a forged link, an unsubscribed subscriber's link or a closed seminar are refused."""
from __future__ import annotations

from sqlalchemy import select

from seminar.extensions import db
from seminar.models import Job, Registration
from seminar.programme.service import cancel_seminar
from seminar.reach.announce import announce

from .helpers import csrf_from, work
from .reach_helpers import on_the_list, list_links, mails_to, old_token, path_of, press, subscribe, subscriber

ANOUK = "anouk@kinderopvang.example"


def announced(app, client, make_seminar, email=ANOUK, **seminar_kw):
    on_the_list(app, client, email, name="Anouk de Vries", organisation="De Boomhut")
    seminar = make_seminar(**seminar_kw)
    announce(seminar.id)
    work()
    [mail] = [m for m in mails_to(app, email) if "Nieuw seminar" in m["Subject"]]
    return seminar, list_links(mail)["reserve"]


def registrations() -> list[Registration]:
    db.session.expire_all()
    return list(db.session.scalars(select(Registration).order_by(Registration.id)))


def test_reserve_link_takes_a_seat_in_one_press(app, client, make_seminar):
    seminar, url = announced(app, client, make_seminar, title="Met één druk")
    page = client.get(path_of(url))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Met één druk" in html
    assert 'value="Anouk de Vries"' in html and 'value="De Boomhut"' in html
    assert registrations() == []  # the GET changed nothing

    response = client.post(path_of(url), data={"csrf_token": csrf_from(html), "name": "Anouk de Vries",
                                               "organisation": "De Boomhut (Utrecht)", "location_type": "kdv"})
    assert response.status_code == 303
    assert "/r/manage/" in response.headers["Location"]
    [reg] = registrations()
    assert (reg.status, reg.email, reg.organisation) == ("confirmed", ANOUK, "De Boomhut (Utrecht)")
    assert subscriber(ANOUK).organisation == "De Boomhut (Utrecht)"
    from seminar.reach.models import AnnouncementDelivery
    [delivery] = db.session.scalars(select(AnnouncementDelivery)).all()
    assert delivery.signed_up_at is not None  # counted for the portal: a sign-up it brought
    work()
    kinds = [job.kind for job in db.session.scalars(select(Job).where(Job.registration_id == reg.id))]
    assert "mail.confirm_address" not in kinds  # no second confirmation mail
    assert any("bevestigd" in m["Subject"] for m in mails_to(app, ANOUK))

    # A second press: refused clearly, nothing changes.
    again = client.post(path_of(url), data={"csrf_token": csrf_from(html), "name": "Anouk",
                                            "organisation": "X", "location_type": "kdv"})
    assert again.status_code == 409 and "Je bent al aangemeld" in again.get_data(as_text=True)
    assert client.get(path_of(url)).status_code == 409
    assert len(registrations()) == 1


def test_reserve_on_a_full_seminar_gives_a_waitlist_place(app, client, make_seminar):
    from .portal_helpers import attendee

    seminar, url = announced(app, client, make_seminar, capacity=1)
    attendee(seminar, "Bram", "bram@bso.example")
    assert press(client, url, name="Anouk", organisation="De Boomhut", location_type="bso").status_code == 303
    assert [r.status for r in registrations()] == ["confirmed", "waitlisted"]


def test_reserve_form_errors_are_shown_and_nothing_is_stored(app, client, make_seminar):
    seminar, url = announced(app, client, make_seminar)
    response = press(client, url, name="", organisation="<b>", location_type="niets")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Vul je naam in." in html and "Kies de soort locatie." in html
    assert registrations() == []


def test_forged_foreign_and_closed_reserve_links_are_refused(app, client, make_seminar):
    from seminar.reach.service import unsubscribe

    seminar, url = announced(app, client, make_seminar)
    token = path_of(url).rsplit("/", 1)[1]
    sub = subscriber(ANOUK)
    other, _ = announced(app, client, make_seminar, email="bram@bso.example", title="Ander")
    for bad in (token[:-3] + "xyz",
                old_token(app, "reserve", {"s": sub.id, "n": "wrong", "m": seminar.id}, 0),
                old_token(app, "unsubscribe", {"s": sub.id, "n": sub.nonce, "m": seminar.id}, 0),
                old_token(app, "reserve", {"s": sub.id, "n": sub.nonce, "m": 9999}, 0)):
        assert client.get(f"/r/list/reserve/{bad}").status_code == 404
        assert client.post(f"/r/list/reserve/{bad}", data={"name": "x"}).status_code in (400, 404)
    # A link made right for another seminar names that seminar only: it never seats here.
    assert client.get(f"/r/list/reserve/{old_token(app, 'reserve', {'s': sub.id, 'n': sub.nonce, 'm': other.id}, 0)}"
                      ).get_data(as_text=True).count("Ander") >= 1
    unsubscribe(sub.id)
    assert client.get(path_of(url)).status_code == 410
    cancel_seminar(other.id)
    bram = list_links([m for m in mails_to(app, "bram@bso.example") if "Nieuw seminar" in m["Subject"]][0])["reserve"]
    response = client.get(path_of(bram))
    assert response.status_code == 410 and "geannuleerd" in response.get_data(as_text=True)
    assert registrations() == []


def test_reserve_link_confirms_a_signup_still_waiting_for_its_confirmation(app, client, make_seminar):
    """Signed up on the page, not confirmed yet, then the announcement's button: the press is the
    proof of the address (it was refused as 'already signed up' while no place was held)."""
    seminar, url = announced(app, client, make_seminar, title="Half aangemeld")
    page = client.get(f"/seminars/{seminar.slug}")
    signed = client.post(f"/seminars/{seminar.slug}", data=dict(
        csrf_token=csrf_from(page.get_data(as_text=True)), name="Anouk", email=ANOUK,
        organisation="De Boomhut", location_type="kdv", consent="y"))
    assert signed.status_code == 303
    [pending] = registrations()
    assert pending.status == "pending"
    form = client.get(path_of(url))
    assert form.status_code == 200
    response = client.post(path_of(url), data={"csrf_token": csrf_from(form.get_data(as_text=True)),
                                               "name": "Anouk de Vries", "organisation": "De Boomhut",
                                               "location_type": "kdv"})
    assert response.status_code == 303
    [reg] = registrations()
    assert (reg.id, reg.status, reg.name) == (pending.id, "confirmed", "Anouk de Vries")


def test_reserve_form_asks_the_register_number_of_an_accredited_seminar(app, client, make_seminar):
    """The sign-up form asks function and (accredited seminars) the register number printed on the
    certificate; a seat taken with the reserve link had no way to give them."""
    seminar, url = announced(app, client, make_seminar, title="Met punten")
    seminar = db.session.get(type(seminar), seminar.id)
    seminar.register_name, seminar.course_number = "SKJ", "SKJ-2027-9"
    db.session.commit()
    form = client.get(path_of(url))
    assert 'name="register_number"' in form.get_data(as_text=True)
    bad = client.post(path_of(url), data={"csrf_token": csrf_from(form.get_data(as_text=True)), "name": "Anouk",
                                          "organisation": "De Boomhut", "location_type": "kdv",
                                          "register_number": "<b>"})
    assert bad.status_code == 400 and registrations() == []
    response = client.post(path_of(url), data={"csrf_token": csrf_from(form.get_data(as_text=True)),
                                               "name": "Anouk", "organisation": "De Boomhut", "location_type": "kdv",
                                               "function": "Pedagogisch coach", "register_number": "SKJ 12345"})
    assert response.status_code == 303
    [reg] = registrations()
    assert (reg.function, reg.register_number) == ("Pedagogisch coach", "SKJ 12345")
