"""Mail from and for the portal: host digests over real SMTP, password reset links that work
once, host accounts, and the organiser's view of the outbox."""
from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta

import pytest

from seminar.extensions import db
from seminar.manage.passwords import request_reset
from seminar.manage.service import save_user
from seminar.models import Job, User
from seminar.programme.service import cancel_seminar, create_seminar, update_seminar
from seminar.registration.service import cancel
from seminar.timeutil import utcnow

from .helpers import csrf_from, future, jobs, read_eml, text_of, work
from .portal_helpers import PASSWORD, Staff, attendee, make_user

HOST = "hanna@bmk.example"


def digest_seminar(**kw):
    values = dict(title="Trauma-sensitief werken", start_at=future(days=10), duration_minutes=90,
                  capacity=2, hosts=[HOST], publish=True)
    values.update(kw)
    return create_seminar(**values)


def mails_to(smtp, address):
    return smtp.recorder.to(address)


def plain_text(msg) -> str:
    return text_of(msg).replace("\r\n", "\n")


# ---------------------------------------------------------------- host digests

def test_host_digests_arrive_at_the_smtp_server_with_counts_and_changes(smtp_app, smtp):
    make_user(HOST, role="host", name="Hanna Host")
    # Starts in 30 hours: the worker's clock moved to the lists' times stays within the 48 hours
    # in which Dirk's unconfirmed sign-up is still pending.
    seminar = digest_seminar(start_at=utcnow().replace(second=0, microsecond=0) + timedelta(hours=30))
    attendee(seminar, "=Anouk de Vries", "anouk@kdv.example", organisation="KDV De Boomhut")
    bram = attendee(seminar, "Bram Jansen", "bram@bso.example", organisation="BSO Buiten")
    carla = attendee(seminar, "Carla Smit", "carla@gastouder.example", organisation="Gastouders Zon")
    attendee(seminar, "Dirk Bos", "dirk@peuter.example", confirmed=False)
    assert carla.status == "waitlisted"

    # Not yet due: nothing for the host.
    day_before = seminar.start_at - timedelta(hours=24)
    work(now=day_before - timedelta(minutes=5))
    assert mails_to(smtp, HOST) == []

    work(now=day_before + timedelta(minutes=1))
    [first] = mails_to(smtp, HOST)
    assert first["Subject"] == "Deelnemerslijst: Trauma-sensitief werken"
    assert first["To"] == "Hanna Host <hanna@bmk.example>"
    text = plain_text(first)
    assert "Beste Hanna Host," in text
    assert "begint over 24 uur" in text
    assert ("Bezette plaatsen: 2 van 2. Op de wachtlijst: 1. "
            "Aangemeld maar nog niet bevestigd: 1.") in text
    assert "Dit is de eerste lijst voor dit seminar." in text
    assert "1. =Anouk de Vries (KDV De Boomhut)\n\n2. Bram Jansen (BSO Buiten)" in text
    assert "1. Carla Smit (Gastouders Zon)" in text.split("Op de wachtlijst, op volgorde:")[1]
    assert "dirk@peuter.example" not in text and "anouk@kdv.example" not in text
    assert f"http://seminar.test/manage/seminars/{seminar.id}/attendees.xlsx" in text
    assert "host bent van dit seminar" in text
    assert first.get_body(preferencelist=("html",)) is not None

    # Between the lists: Bram cancels (Carla moves up), Eva joins the waitlist.
    cancel(bram.id)
    eva = attendee(seminar, "Eva de Wit", "eva@kdv.example", organisation="KDV Eva")
    assert eva.status == "waitlisted"

    work(now=seminar.start_at - timedelta(minutes=59))
    [_, final] = mails_to(smtp, HOST)
    assert final["Subject"] == "Definitieve deelnemerslijst: Trauma-sensitief werken"
    text = plain_text(final)
    assert "begint over 1 uur" in text and "Dit is de definitieve lijst voor de start." in text
    assert "Bezette plaatsen: 2 van 2. Op de wachtlijst: 1." in text
    assert re.search(r"Sinds de vorige lijst \([^)]+\): 2 erbij, 1 afgemeld\.", text)
    assert "Nieuw: Eva de Wit (KDV Eva)" in text
    assert "Van de wachtlijst naar een plaats: Carla Smit (Gastouders Zon)" in text
    assert "Afgemeld: Bram Jansen (BSO Buiten)" in text
    assert "Anouk" not in text.split("Deelnemers met een plaats:")[0]  # unchanged: not listed as news

    # Both lists are in the outbox as sent, with the recipient.
    sent = jobs("mail.host_digest", "done")
    assert [j.recipient for j in sent] == [HOST, HOST] and all(j.message for j in sent)


def test_digest_for_a_seminar_without_attendees(smtp_app, smtp):
    seminar = digest_seminar()
    work(now=seminar.start_at - timedelta(hours=23))
    [mail] = mails_to(smtp, HOST)
    text = plain_text(mail)
    assert "Hallo," in text  # a host added by address only has no name yet
    assert "Bezette plaatsen: 0 van 2. Op de wachtlijst: 0." in text
    assert "Nog niemand heeft een plaats." in text and "Op de wachtlijst, op volgorde" not in text


def test_digest_link_leads_the_host_to_the_export_after_logging_in(smtp_app, smtp):
    make_user(HOST, role="host")
    seminar = digest_seminar()
    attendee(seminar, "Anouk de Vries", "anouk@kdv.example")
    work(now=seminar.start_at - timedelta(hours=23))
    link = re.search(r"http://seminar\.test(/manage/seminars/\d+/attendees\.xlsx)",
                     text_of(mails_to(smtp, HOST)[0])).group(1)
    client = smtp_app.test_client()
    response = client.get(link)
    assert response.status_code == 302 and "/manage/login?next=" in response.headers["Location"]
    response = Staff(client, HOST).login(next_url=link)
    assert response.headers["Location"].endswith(link)
    export = client.get(link)
    assert export.status_code == 200 and export.get_data().startswith(b"PK")  # an xlsx (zip)


def test_digests_follow_the_seminar_when_it_moves_or_is_cancelled(app):
    seminar = digest_seminar(digest_hours="48,24,2")
    assert sorted(j.payload["hours"] for j in jobs("mail.host_digest")) == [2, 24, 48]
    assert [j.payload["final"] for j in jobs("mail.host_digest") if j.payload["hours"] == 2] == [True]

    later = seminar.start_at + timedelta(days=7)
    update_seminar(seminar.id, start_at=later)
    assert {j.due_at for j in jobs("mail.host_digest", "pending")} == {
        later - timedelta(hours=h) for h in (48, 24, 2)}
    update_seminar(seminar.id, digest_hours="24")
    assert [j.due_at for j in jobs("mail.host_digest", "pending")] == [later - timedelta(hours=24)]

    cancel_seminar(seminar.id)
    assert jobs("mail.host_digest", "pending") == []


def test_seminar_published_close_to_the_start_gets_only_future_lists(app):
    digest_seminar(start_at=utcnow() + timedelta(hours=5))
    assert [j.payload["hours"] for j in jobs("mail.host_digest")] == [1]


def test_a_switched_off_host_gets_no_digest(app):
    seminar = digest_seminar()
    host = db.session.scalar(db.select(User).filter_by(email=HOST))
    assert len(jobs("mail.host_digest", "pending")) == 2
    save_user(host, email=HOST, name="", role="host", active=False)
    assert jobs("mail.host_digest", "pending") == []
    assert seminar.hosts  # still the host on paper


# ---------------------------------------------------------------- password reset

def reset_link(app, address) -> str:
    mails = [m for m in read_eml(app) if address in m["To"]]
    assert mails, f"no mail to {address}"
    return re.search(r"http://seminar\.test(/manage/reset/[A-Za-z0-9_.\-]+)",
                     text_of(mails[-1])).group(1)


def test_password_reset_link_works_once(app, client):
    # A host added on the seminar form has no password yet: "forgot password" sets the first one.
    digest_seminar()
    page = client.get("/manage/password/forgot").get_data(as_text=True)
    answers = []
    for address in (HOST, "niemand@bmk.example"):
        response = client.post("/manage/password/forgot",
                               data={"csrf_token": csrf_from(page), "email": address})
        assert response.status_code == 200
        answers.append(re.sub(r'value="[^"]*"', "", response.get_data(as_text=True)))
    assert answers[0] == answers[1]  # the page never tells who has an account
    assert "Als er een account bij dit adres hoort" in answers[0]

    work()
    [mail] = read_eml(app)  # one mail: none for the unknown address
    assert mail["To"] == HOST and mail["Subject"] == "Kies een nieuw wachtwoord voor het seminarportaal"
    assert "2 uur geldig en werkt één keer" in text_of(mail)
    [job] = jobs("mail.password_reset")
    assert (job.state, job.recipient, job.message) == ("done", HOST, None)  # the link is not kept

    link = reset_link(app, HOST)
    form = client.get(link)
    assert form.status_code == 200
    token = csrf_from(form.get_data(as_text=True))
    response = client.post(link, data={"csrf_token": token, "password": "kort", "confirm": "kort"})
    assert response.status_code == 400 and "Gebruik minstens 10 tekens" in response.get_data(as_text=True)
    response = client.post(link, data={"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD + "x"})
    assert response.status_code == 400 and "niet gelijk" in response.get_data(as_text=True)
    response = client.post(link, data={"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 303
    assert Staff(client, HOST).login().status_code == 303

    # The same link a second time: refused, also when posted to.
    client.post("/manage/logout", data={"csrf_token": csrf_from(client.get("/manage/").get_data(as_text=True))})
    again = client.get(link)
    assert again.status_code == 410 and "Deze link werkt niet (meer)" in again.get_data(as_text=True)
    response = client.post(link, data={"csrf_token": token, "password": "nog een ander wachtwoord",
                                       "confirm": "nog een ander wachtwoord"})
    assert response.status_code == 410
    assert Staff(client, HOST).login().status_code == 303


def test_a_forged_or_damaged_reset_link_is_refused(app, client):
    make_user(HOST, role="host")
    for token in ("niets", "eyJ1IjoxfQ.abc.def"):
        assert client.get(f"/manage/reset/{token}").status_code == 410


def test_a_password_change_ends_other_sessions(app, client):
    make_user(HOST, role="host")
    first = Staff(client, HOST).logged_in()
    other_browser = Staff(app.test_client(), HOST).logged_in()
    response = first.submit("/manage/account", {"current": PASSWORD, "password": "een heel nieuw wachtwoord",
                                                "confirm": "een heel nieuw wachtwoord"})
    assert response.status_code == 303
    assert first.get("/manage/").status_code == 200
    assert other_browser.get("/manage/").status_code == 302


# ---------------------------------------------------------------- accounts

def test_organiser_creates_a_host_who_sets_a_password_from_the_mail(app, client):
    make_user("organisator@bmk.example")
    organiser = Staff(client, "organisator@bmk.example").logged_in()
    response = organiser.submit("/manage/users/new", {"email": "Nina.Host@BMK.example", "name": "Nina",
                                                      "role": "host", "active": "y", "invite": "y"})
    assert response.status_code == 303, response.get_data(as_text=True)
    nina = db.session.scalar(db.select(User).filter_by(email="nina.host@bmk.example"))
    assert (nina.role, nina.name, nina.password_hash) == ("host", "Nina", None)
    assert "nina.host@bmk.example" in organiser.text("/manage/users")

    # The same address again is refused; an organiser cannot demote themselves.
    response = organiser.submit("/manage/users/new", {"email": "nina.host@bmk.example", "role": "host", "active": "y"})
    assert response.status_code == 400 and "Er is al een account" in response.get_data(as_text=True)
    me = db.session.scalar(db.select(User).filter_by(email="organisator@bmk.example"))
    response = organiser.submit(f"/manage/users/{me.id}", {"email": me.email, "role": "host", "active": "y"})
    assert response.status_code == 400 and "eigen rechten" in response.get_data(as_text=True)

    work()
    [mail] = [m for m in read_eml(app) if "nina.host" in m["To"]]
    assert mail["Subject"] == "Je account voor het seminarportaal"
    assert "7 dagen geldig" in text_of(mail)
    organiser.press("/manage/", "/manage/logout")
    link = reset_link(app, "nina.host@bmk.example")
    form = client.get(link).get_data(as_text=True)
    client.post(link, data={"csrf_token": csrf_from(form), "password": PASSWORD, "confirm": PASSWORD})
    assert Staff(client, "nina.host@bmk.example").login().status_code == 303


# ---------------------------------------------------------------- outbox

@pytest.fixture
def organiser(client):
    make_user("organisator@bmk.example")
    return Staff(client, "organisator@bmk.example").logged_in()


def test_outbox_shows_each_message_as_the_recipient_sees_it_and_resends(app, client, organiser, make_seminar):
    seminar = make_seminar()
    reg = attendee(seminar, "Anouk de Vries", "anouk@kdv.example", confirmed=False)
    [job] = jobs("mail.confirm_address")

    listing = organiser.text("/manage/outbox")
    assert "Mail: bevestig je adres" in listing and "anouk@kdv.example" in listing
    # Not sent yet: composed now, as it would go out.
    page = organiser.text(f"/manage/outbox/{job.id}")
    assert "Nog niet verstuurd" in page and "Bevestig je aanmelding: " + seminar.title in page
    assert "Anouk de Vries &lt;anouk@kdv.example&gt;" in page
    preview = organiser.get(f"/manage/outbox/{job.id}/preview")
    assert preview.status_code == 200 and "Bevestig mijn aanmelding" in preview.get_data(as_text=True)
    assert "default-src 'none'" in preview.headers["Content-Security-Policy"]
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in preview.headers["Content-Security-Policy"]
    assert 'sandbox=""' in page and f"/manage/outbox/{job.id}/preview" in page

    work()
    page = organiser.text(f"/manage/outbox/{job.id}")
    assert "Zoals het is verstuurd" in page and "uitnodiging" not in page
    sent_html = organiser.get(f"/manage/outbox/{job.id}/preview").get_data(as_text=True)
    assert "Bevestig mijn aanmelding" in sent_html

    # Send again: a new job, composed afresh, delivered by the worker.
    response = organiser.press(f"/manage/outbox/{job.id}", f"/manage/outbox/{job.id}/resend")
    assert response.status_code == 303
    again = jobs("mail.confirm_address")[-1]
    assert again.id != job.id and again.payload["resent_from"] == job.id
    work()
    assert [m["Subject"] for m in read_eml(app)].count("Bevestig je aanmelding: " + seminar.title) == 2

    # A failed job is shown as failed and tried again on request.
    again.state, again.attempts, again.last_error = "failed", 12, "SMTP 550: mailbox unavailable"
    db.session.commit()
    failed = organiser.text("/manage/outbox?state=failed")
    assert "SMTP 550: mailbox unavailable" in failed and "Mail: bevestig je adres" in failed
    organiser.press(f"/manage/outbox/{again.id}", f"/manage/outbox/{again.id}/resend")
    db.session.expire_all()
    retried = db.session.get(Job, again.id)
    assert (retried.state, retried.attempts, retried.last_error) == ("pending", 0, None)
    assert reg.id == retried.registration_id


def test_outbox_hides_password_links_and_explains_mails_that_no_longer_apply(app, client, organiser, make_seminar):
    request_reset("organisator@bmk.example")
    [reset] = jobs("mail.password_reset")
    page = organiser.text(f"/manage/outbox/{reset.id}")
    assert "persoonlijke link" in page and "/manage/reset/" not in page
    assert organiser.get(f"/manage/outbox/{reset.id}/preview").status_code == 404

    seminar = make_seminar()
    reg = attendee(seminar, "Bram Jansen", "bram@bso.example", confirmed=False)
    cancel(reg.id)
    [stale] = jobs("mail.confirm_address")
    assert "niet meer van toepassing" in organiser.text(f"/manage/outbox/{stale.id}")


def test_outbox_previews_an_unsent_host_digest(app, client, organiser):
    make_user(HOST, role="host", name="Hanna Host")
    seminar = digest_seminar()
    attendee(seminar, "Anouk de Vries", "anouk@kdv.example")
    digest = min(jobs("mail.host_digest"), key=lambda j: j.due_at)
    page = organiser.text(f"/manage/outbox/{digest.id}")
    assert "Nog niet verstuurd" in page and "Deelnemerslijst: Trauma-sensitief werken" in page
    assert "Hanna Host &lt;hanna@bmk.example&gt;" in page
    assert "Bezette plaatsen: 1 van 2" in page


def test_portal_composers_are_registered_in_a_web_process(tmp_path):
    """The web process never imports the worker's job families; the outbox preview of a digest
    or a reset mail must still find its composer."""
    code = (
        "from seminar import create_app\n"
        f"create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/x.db', "
        f"'INSTANCE_PATH': '{tmp_path}', 'SECRET_KEY': 'x'}})\n"
        "from seminar.jobs import kinds\n"
        "print(sorted(kind.name for kind in kinds.mails() if kind.to_users and kind.handle()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'mail.host_digest'" in result.stdout and "'mail.password_reset'" in result.stdout


def test_resending_a_failed_job_whose_intent_waits_again_keeps_one_waiting(app, client, organiser, make_seminar):
    # Only one job per key may wait (a partial unique index): a failed "changed" mail sent again
    # from the portal while a newer one waits under its key answers with that one, not a 500.
    from seminar.jobs import kinds

    seminar = make_seminar()
    reg = attendee(seminar, "Anouk de Vries", "anouk@kdv.example")
    old = kinds.SEMINAR_CHANGED.enqueue(registration=reg)
    old.state, old.attempts, old.last_error = "failed", 12, "SMTP 550"
    db.session.commit()
    newer = kinds.SEMINAR_CHANGED.enqueue(registration=reg)
    db.session.commit()
    assert newer.id != old.id

    response = organiser.press(f"/manage/outbox/{old.id}", f"/manage/outbox/{old.id}/resend")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/manage/outbox/{newer.id}")
    waiting = [j for j in jobs("mail.seminar_changed") if j.state == "pending"]
    assert [j.id for j in waiting] == [newer.id]
