"""The whole path of a sign-up, as a person walks it: form, mail, confirm, seat, cancel, waitlist."""
from __future__ import annotations


from .helpers import Person, csrf_from, links_in, read_eml, registrations, text_of, work


def test_index_lists_upcoming_seminar_in_dutch(client, make_seminar):
    seminar = make_seminar()
    page = client.get("/").get_data(as_text=True)
    assert seminar.title in page
    assert 'lang="nl"' in page
    assert "10 plaatsen vrij" in page


def test_sign_up_confirm_seat_and_cancel(app, client, make_seminar, person):
    seminar = make_seminar(capacity=1)

    response = person.sign_up(seminar)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Controleer je mail" in page
    [reg] = registrations()
    assert reg.status == "pending"

    work()
    [mail] = read_eml(app)
    assert mail["To"] == "Anouk de Vries <anouk@kinderopvang.example>"
    assert "Bevestig" in mail["Subject"]
    confirm_url = links_in(mail)["confirm"]

    # Following the link (as a mail scanner would) changes nothing; the button does.
    assert person.follow(confirm_url).status_code == 200
    assert registrations()[0].status == "pending"
    response = person.press_button(confirm_url)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "plaats is gereserveerd" in page
    assert registrations()[0].status == "confirmed"

    work()
    seat_mail = read_eml(app)[-1]
    assert "bevestigd" in seat_mail["Subject"]
    join = links_in(seat_mail)["join"]
    redirect = person.follow(join)
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith("https://meet.jit.si/bmk-")

    # Someone else signs up: the seminar is full, so they go on the waitlist.
    other = Person(client, name="Bram Jansen", email="bram@bso.example")
    other.sign_up(seminar)
    work()
    other_confirm = links_in(read_eml(app)[-1])["confirm"]
    other.press_button(other_confirm)
    assert registrations()[1].status == "waitlisted"
    work()
    assert "wachtlijst" in read_eml(app)[-1]["Subject"]

    # Anouk cancels: Bram moves up and is told by mail with his own join link.
    manage = links_in(seat_mail)["manage"]
    response = person.press_button(manage)
    assert response.status_code == 200
    assert "geannuleerd" in response.get_data(as_text=True)
    first, second = registrations()
    assert (first.status, second.status) == ("cancelled", "confirmed")
    work()
    subjects = {m["To"]: m["Subject"] for m in read_eml(app)[-2:]}
    assert "geannuleerd" in subjects["Anouk de Vries <anouk@kinderopvang.example>"]
    assert "vrijgekomen" in subjects["Bram Jansen <bram@bso.example>"]


def test_signing_up_twice_resends_the_link_without_a_duplicate(app, client, make_seminar, person):
    seminar = make_seminar()
    first = person.sign_up(seminar)
    second = person.sign_up(seminar, email="ANOUK@kinderopvang.example ")
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(registrations()) == 1
    work()
    mails = read_eml(app)
    assert len(mails) == 2
    assert all("Bevestig" in m["Subject"] for m in mails)


def test_known_address_gets_a_note_not_a_second_seat(app, client, make_seminar, person):
    seminar = make_seminar()
    person.sign_up(seminar)
    work()
    person.press_button(links_in(read_eml(app)[0])["confirm"])
    response = person.sign_up(seminar)
    assert response.status_code == 303  # the same page as for a new address
    work()
    assert len(registrations()) == 1
    assert any("al aangemeld" in text_of(m) for m in read_eml(app))


def test_once_the_seminar_has_started_the_manage_page_no_longer_cancels(app, client, make_seminar, person):
    """After the start the registration is the record of who took part (attendance, certificate):
    the attendee's cancel button is gone, and a POST from an old page changes nothing."""
    from datetime import timedelta

    from seminar.extensions import db
    from seminar.models import Job, Seminar
    from seminar.timeutil import utcnow

    seminar = make_seminar()
    manage = seated_with_manage_link(app, seminar, person)
    before = person.follow(manage)
    assert "Annuleer mijn aanmelding" in before.get_data(as_text=True)

    db.session.get(Seminar, seminar.id).start_at = utcnow() - timedelta(minutes=30)
    db.session.commit()
    jobs = db.session.query(Job).count()
    page = person.follow(manage).get_data(as_text=True)
    assert "Annuleer mijn aanmelding" not in page
    assert "annuleren is niet meer mogelijk" in page
    path = manage.replace("http://seminar.test", "")
    response = client.post(path, data={"csrf_token": csrf_from(before.get_data(as_text=True))})
    assert response.status_code == 409
    assert "al begonnen" in response.get_data(as_text=True)
    assert "deelgenomen" not in response.get_data(as_text=True)  # not every registration had a seat
    db.session.expire_all()
    assert registrations()[0].status == "confirmed"
    assert db.session.query(Job).count() == jobs


def test_cancelling_twice_before_the_start_is_cancelled_twice(app, client, make_seminar, person):
    """A double click, or the form sent again from the back button: the same answer, no error."""
    manage = seated_with_manage_link(app, make_seminar(), person)
    page = person.follow(manage).get_data(as_text=True)
    path = manage.replace("http://seminar.test", "")
    for _ in range(2):
        response = client.post(path, data={"csrf_token": csrf_from(page)})
        assert response.status_code == 200
        assert "geannuleerd" in response.get_data(as_text=True)
    assert registrations()[0].status == "cancelled"


def seated_with_manage_link(app, seminar, person) -> str:
    """Signed up, confirmed, seated: the manage link from the seat mail."""
    person.sign_up(seminar)
    work()
    person.press_button(links_in(read_eml(app)[-1])["confirm"])
    work()
    return links_in(read_eml(app)[-1])["manage"]
