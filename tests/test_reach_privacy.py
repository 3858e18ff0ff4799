"""The interest list as a purpose of its own: INTEREST_RETENTION_DAYS with one "still
interested?" mail, export and erase of a person, the purge log, the privacy page."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from seminar import privacy
from seminar.extensions import db
from seminar.models import Job, PurgeLog
from seminar.reach.announce import announce
from seminar.timeutil import utcnow

from .helpers import Person, links_in, work
from .reach_helpers import on_the_list, list_links, mails_to, press, subscribe, subscriber

ANOUK = "anouk@kinderopvang.example"


def test_quiet_address_is_asked_once_and_stays_when_it_answers(app, client):
    on_the_list(app, client, ANOUK, name="Anouk", organisation="De Boomhut")
    later = utcnow() + timedelta(days=731)
    report = privacy.purge(now=later, dry_run=True)
    assert report.interest.asked == 1 and subscriber(ANOUK).reconfirm_asked_at is None
    privacy.purge(now=later)
    privacy.purge(now=later + timedelta(days=1))  # asked once, not every day
    work()
    [mail] = [m for m in mails_to(app, ANOUK) if "nog ontvangen" in m["Subject"]]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    still = list_links(mail)["still"]
    assert press(client, still).status_code == 200
    sub = subscriber(ANOUK)
    assert sub.reconfirm_asked_at is None and sub.status == "active"
    privacy.purge(now=later + timedelta(days=40))
    assert subscriber(ANOUK) is not None


def test_quiet_address_without_answer_is_removed_and_counted(app, client):
    on_the_list(app, client, ANOUK, name="Anouk", organisation="De Boomhut")
    on_the_list(app, client, "bram@bso.example")
    later = utcnow() + timedelta(days=731)
    privacy.purge(now=later)
    work()
    assert privacy.purge(now=later + timedelta(days=31), dry_run=True).interest.removed == 2
    privacy.purge(now=later + timedelta(days=31))
    assert subscriber(ANOUK) is None and subscriber("bram@bso.example") is None
    log = db.session.scalar(select(PurgeLog).where(PurgeLog.reason == "interest"))
    assert log.subscribers == 2 and log.messages >= 4  # their sent mails went with them
    assert not [j for j in db.session.scalars(select(Job)) if j.message and ANOUK in j.message]


def test_a_signup_counts_as_interest(app, client, make_seminar):
    on_the_list(app, client, ANOUK, name="Anouk", organisation="De Boomhut")
    seminar = make_seminar()
    person = Person(client)
    person.sign_up(seminar)
    work()
    with app.test_request_context():
        pass
    from .helpers import read_eml
    confirm = [links_in(m)["confirm"] for m in read_eml(app) if "confirm" in links_in(m)][0]
    person.press_button(confirm)
    assert subscriber(ANOUK).active_at > subscriber(ANOUK).confirmed_at


def test_export_and_erase_cover_the_list(app, client, make_seminar, runner, tmp_path):
    on_the_list(app, client, "Anouk@Kinderopvang.example", name="Anouk", organisation="De Boomhut")  # as typed: the sent copies still go
    seminar = make_seminar(title="Voor de export")
    announce(seminar.id)
    work()
    data = privacy.export_person(ANOUK)
    entry = data["interest_list"]
    assert entry["status"] == "active" and entry["name"] == "Anouk" and entry["organisation"] == "De Boomhut"
    assert [a["seminar"] for a in entry["announcements"]] == [seminar.id]
    out = tmp_path / "export.json"
    assert runner.invoke(args=["privacy", "export", "--email", ANOUK, "--output", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["interest_list"]["email"].lower() == ANOUK

    result = runner.invoke(args=["privacy", "erase", "--email", ANOUK, "--yes"])
    assert result.exit_code == 0
    assert subscriber(ANOUK) is None
    assert privacy.export_person(ANOUK)["interest_list"] is None
    assert not [j for j in db.session.scalars(select(Job)) if ANOUK in (j.message or "").lower()]
    assert not [j for j in db.session.scalars(select(Job)) if ANOUK in (j.recipient or "").lower()]
    assert db.session.scalar(select(PurgeLog).where(PurgeLog.reason == "request", PurgeLog.subscribers == 1))


def test_privacy_page_describes_the_list(client):
    page = client.get("/privacy").get_data(as_text=True)
    assert "De belangstellendenlijst" in page
    assert "730 dagen" in page
    english = client.get("/privacy?lang=en").get_data(as_text=True)
    assert "730 days" in english and "one click" in english


def test_erased_address_queued_mail_is_dropped_and_its_id_reused_is_announced_once(app, client, make_seminar):
    """SQLite gives an erased subscriber's id to the next one: the announcement still queued for the
    erased address must neither reach the newcomer nor block their own (the unique key of waiting
    jobs: announcing again failed with an IntegrityError)."""
    from seminar.reach import service

    on_the_list(app, client, "eerste@kinderopvang.example")
    gone = on_the_list(app, client, ANOUK)
    seminar = make_seminar(title="Nog in de wachtrij")
    assert announce(seminar.id).recipients == 2  # queued, not sent yet
    assert service.erase(ANOUK) == 1
    assert not [job for job in db.session.scalars(select(Job).where(Job.kind == "mail.announcement"))
                if job.payload["subscriber_id"] == gone.id and job.state == "pending"]
    service.subscribe(service.SubscribeData(email="nieuw@kinderopvang.example"))
    newcomer = subscriber("nieuw@kinderopvang.example")
    service.confirm(newcomer.id)
    assert announce(seminar.id).recipients == 1  # the newcomer, whatever id they were given
    work()
    assert [m["Subject"] for m in mails_to(app, "nieuw@kinderopvang.example")
            if "Nieuw seminar" in m["Subject"]] == ["Nieuw seminar: Nog in de wachtrij"]
    assert not [m for m in mails_to(app, ANOUK) if "Nieuw seminar" in m["Subject"]]
