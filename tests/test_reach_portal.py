"""The interest list in the portal: figures, erasing an address, and announcing a seminar
(preview, a test to the organiser's own address, then send). Organisers only."""
from __future__ import annotations

from seminar.extensions import db
from seminar.reach.models import Announcement

from .helpers import work
from .portal_helpers import Staff, attendee, make_user
from .reach_helpers import on_the_list, list_links, mails_to, press, subscribe, subscriber

ANOUK = "anouk@kinderopvang.example"


def test_organiser_previews_tests_and_sends_an_announcement(app, client, make_seminar):
    make_user("org@bmk.example", name="Olga Organisator")
    for address in (ANOUK, "bram@bso.example", "chris@gastouder.example"):
        on_the_list(app, client, address)
    seminar = make_seminar(title="Aan te kondigen")
    attendee(seminar, "Chris", "chris@gastouder.example")  # signed up already: skipped
    staff = Staff(client, "org@bmk.example").logged_in()
    assert "Aankondigen aan de belangstellendenlijst" in staff.text(f"/manage/seminars/{seminar.id}")

    page = staff.text(f"/manage/list/seminars/{seminar.id}/announce")
    assert "2 adressen op de lijst zouden deze aankondiging krijgen" in page
    assert "Nieuw seminar: Aan te kondigen" in page and "New seminar" not in page
    assert "New seminar: Aan te kondigen" in staff.text(f"/manage/list/seminars/{seminar.id}/announce?preview=en")
    assert "Reserveer mijn plaats" in page

    response = staff.press(f"/manage/list/seminars/{seminar.id}/announce",
                           f"/manage/list/seminars/{seminar.id}/announce/test")
    assert response.status_code == 303
    work()
    [test] = mails_to(app, "org@bmk.example")
    assert test["Subject"] == "[Test] Nieuw seminar: Aan te kondigen"
    assert not [m for m in mails_to(app, ANOUK) if "Nieuw seminar" in m["Subject"]]

    response = staff.press(f"/manage/list/seminars/{seminar.id}/announce",
                           f"/manage/list/seminars/{seminar.id}/announce")
    assert response.status_code == 303
    assert "De aankondiging wordt naar 2 adressen gestuurd." in staff.text(response.headers["Location"])
    work()
    [mail] = [m for m in mails_to(app, ANOUK) if "Nieuw seminar" in m["Subject"]]
    # Figures: sent, unsubscribed after it, sign-ups through it.
    press(client.application.test_client(), list_links(mail)["unsubscribe"])
    overview = staff.text("/manage/list/")
    assert "Op de lijst: 2 · wacht op bevestiging: 0 · afgemeld: 1" in overview
    assert "<td>Aan te kondigen</td>" in overview
    row = overview.split("<td>Aan te kondigen</td>")[1].split("</tr>")[0]
    cells = [cell.split("</td>")[0] for cell in row.split("<td>")[2:]]
    assert cells == ["2", "2", "1", "0"]  # queued, sent, unsubscribed after it, sign-ups
    outbox = staff.text("/manage/outbox")
    assert "Mail: aankondiging van een seminar" in outbox and "Mail: test van een aankondiging" in outbox


def test_full_seminar_is_refused_in_the_portal(app, client, make_seminar):
    make_user("org@bmk.example")
    on_the_list(app, client, ANOUK)
    seminar = make_seminar(capacity=1)
    attendee(seminar, "Bram", "bram@bso.example")
    staff = Staff(client, "org@bmk.example").logged_in()
    page = staff.text(f"/manage/list/seminars/{seminar.id}/announce")
    assert "Het seminar is vol" in page and "Verstuur de aankondiging" not in page
    response = staff.press(f"/manage/list/seminars/{seminar.id}/announce",
                           f"/manage/list/seminars/{seminar.id}/announce/test")  # a test still may
    assert response.status_code == 303
    csrf_page = staff.get(f"/manage/list/seminars/{seminar.id}/announce").get_data(as_text=True)
    from .helpers import csrf_from
    response = client.post(f"/manage/list/seminars/{seminar.id}/announce", data={"csrf_token": csrf_from(csrf_page)})
    assert response.status_code == 303
    assert "Niet aangekondigd: Het seminar is vol" in staff.text(response.headers["Location"])
    assert db.session.scalar(db.select(db.func.count(Announcement.id))) == 0


def test_organiser_erases_an_address_and_hosts_may_not(app, client, make_seminar):
    make_user("org@bmk.example")
    make_user("host@bmk.example", role="host")
    on_the_list(app, client, ANOUK)
    host = Staff(app.test_client(), "host@bmk.example").logged_in()
    assert host.get("/manage/list/").status_code == 403
    assert host.get(f"/manage/list/seminars/{make_seminar().id}/announce").status_code == 403
    staff = Staff(client, "org@bmk.example").logged_in()
    response = staff.submit("/manage/list/", {"email": "ANOUK@kinderopvang.example"}, action="/manage/list/erase")
    assert response.status_code == 303
    assert "van de lijst verwijderd" in staff.text(response.headers["Location"])
    assert subscriber(ANOUK) is None
    response = staff.submit("/manage/list/", {"email": ANOUK}, action="/manage/list/erase")
    assert "staat niet op de lijst" in staff.text(response.headers["Location"])


def test_portal_list_needs_a_login(client):
    response = client.get("/manage/list/")
    assert response.status_code == 302 and "/manage/login" in response.headers["Location"]


def test_growth_per_month_counts_joins_and_departures(app):
    from datetime import datetime, timezone

    from seminar.reach.models import Subscriber
    from seminar.reach.stats import growth

    def at(year, month):
        return datetime(year, month, 15, 12, tzinfo=timezone.utc)

    rows = [(at(2026, 1), None), (at(2026, 9), None), (at(2026, 10), at(2026, 11)), (at(2026, 11), None)]
    for i, (joined, left) in enumerate(rows):
        db.session.add(Subscriber(email=f"s{i}@x.example", email_normalized=f"s{i}@x.example",
                                  status="unsubscribed" if left else "active", confirmed_at=joined,
                                  unsubscribed_at=left))
    db.session.add(Subscriber(email="p@x.example", email_normalized="p@x.example", status="pending"))
    db.session.commit()
    months = growth(months=3, now=at(2026, 11))
    assert [(m.label, m.joined, m.left, m.total) for m in months] == [
        ("2026-09", 1, 0, 2), ("2026-10", 1, 0, 3), ("2026-11", 1, 1, 3)]
