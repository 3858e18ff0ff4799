"""The sign-up page is rendered once and reused (seminar/public/pages.py): whatever changes shows
at once, every session gets a token of its own, and the page is the one a fresh render gives."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from seminar.extensions import db
from seminar.models import Registration
from seminar.programme.service import cancel_seminar, update_seminar
from seminar.registration.service import SignUpData, confirm, sign_up

from .helpers import Person, csrf_from, future


def page(client, seminar, query: str = "") -> str:
    response = client.get(f"/seminars/{seminar.slug}{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def without_token(html: str) -> str:
    return re.sub(r'(name="csrf_token" type="hidden" value=")[^"]+"', r'\1"', html)


def stored() -> int:
    return db.session.scalar(db.select(db.func.count(Registration.id)))


def test_an_organisers_edit_shows_at_once(app, client, make_seminar):
    seminar = make_seminar(title="Signalen herkennen", speakers="Dr. A. Jansen")
    assert "Signalen herkennen" in page(client, seminar)
    new_start = future(days=40, hour=14)
    update_seminar(seminar.id, title="Signalen herkennen en melden", description="Nieuwe opzet.",
                   speakers="Dr. B. de Boer", start_at=new_start)
    html = page(client, seminar)
    assert "Signalen herkennen en melden" in html and "Nieuwe opzet." in html
    assert "Dr. B. de Boer" in html and "Dr. A. Jansen" not in html
    assert f"{new_start.astimezone(ZoneInfo('Europe/Amsterdam')):%H:%M}–" in html


def test_seats_left_and_a_full_seminar_show_at_once(client, make_seminar):
    seminar = make_seminar(capacity=2)
    assert "Nog 2 plaatsen vrij." in page(client, seminar)
    first = sign_up(seminar.id, SignUpData(name="Een", email="een@kdv.example",
                                           organisation="KDV", location_type="kdv"))
    assert "Nog 2 plaatsen vrij." in page(client, seminar)  # pending holds no seat
    confirm(first.id)
    assert "Nog 1 plaats vrij." in page(client, seminar)
    second = sign_up(seminar.id, SignUpData(name="Twee", email="twee@kdv.example",
                                            organisation="KDV", location_type="kdv"))
    confirm(second.id)
    assert "Dit seminar is vol." in page(client, seminar)
    update_seminar(seminar.id, capacity=3)
    assert "Nog 1 plaats vrij." in page(client, seminar)


def test_a_cancelled_seminar_shows_its_notice_at_once(client, make_seminar):
    seminar = make_seminar()
    assert "<form" in page(client, seminar)
    cancel_seminar(seminar.id)
    html = page(client, seminar)
    assert "Dit seminar is geannuleerd." in html and "<form" not in html


def test_each_session_gets_its_own_token_and_only_that_one_works(app, make_seminar):
    seminar = make_seminar()
    anouk, bram = Person(app.test_client()), Person(app.test_client(), email="bram@kdv.example")
    anouk_page, bram_page = page(anouk.client, seminar), page(bram.client, seminar)
    assert csrf_from(anouk_page) != csrf_from(bram_page)
    assert without_token(anouk_page) == without_token(bram_page)
    # Bram's token in Anouk's session is refused; each with their own is taken.
    refused = anouk.client.post(f"/seminars/{seminar.slug}",
                                data=dict(anouk.data, csrf_token=csrf_from(bram_page)))
    assert refused.status_code == 400 and stored() == 0
    for person, html in ((anouk, anouk_page), (bram, bram_page)):
        response = person.client.post(f"/seminars/{seminar.slug}",
                                      data=dict(person.data, csrf_token=csrf_from(html)))
        assert response.status_code == 303
    assert stored() == 2


def test_both_languages_from_the_same_seminar(app, make_seminar):
    seminar = make_seminar()
    client = app.test_client()
    dutch = page(client, seminar)
    english = page(client, seminar, "?lang=en")
    assert 'lang="nl"' in dutch and "Aanmelden (gratis)" in dutch
    assert 'lang="en"' in english and "Sign up (free)" in english
    # The choice is kept in the session, as before; another visitor still gets Dutch.
    assert "Sign up (free)" in page(client, seminar)
    assert "Aanmelden (gratis)" in page(app.test_client(), seminar)


def test_a_reused_page_is_the_page_a_fresh_render_gives(app, make_seminar):
    seminar = make_seminar(description="Over de <meldcode> & wat je doet.")
    for query in ("", "?lang=en"):
        first = page(app.test_client(), seminar, query)   # rendered
        again = page(app.test_client(), seminar, query)   # reused
        app.extensions.pop("seminar.signup_pages", None)
        fresh = page(app.test_client(), seminar, query)   # rendered anew
        assert without_token(first) == without_token(again) == without_token(fresh)
        assert "Over de &lt;meldcode&gt; &amp; wat je doet." in first
    # The language link is the matched route and `lang` only (issue 14, finding 12).
    linked = page(app.test_client(), seminar, "?ref=nieuwsbrief")
    assert f'href="/seminars/{seminar.slug}?lang=en"' in linked


def test_a_form_with_mistakes_is_rendered_with_its_errors(person, make_seminar):
    seminar = make_seminar()
    page(person.client, seminar)
    response = person.sign_up(seminar, email="anouk@")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Dit is geen geldig e-mailadres." in html and 'value="anouk@"' in html
    assert "Nog 10 plaatsen vrij." in html
