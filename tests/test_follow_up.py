"""The follow-up after a seminar, through the worker and a real SMTP server: attendees get thanks
with the certificate (PDF attached, parsed back) and the evaluation link, absentees the recording,
nobody who cancelled hears anything, hosts and organisers get the summary; hold, preview, moved
and cancelled seminars; the evaluation counts one anonymous answer per attendee."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader

from seminar.attendance import followup
from seminar.attendance.models import Certificate, EvaluationAnswer
from seminar.attendance.matching import record_attendance
from seminar.database import write_transaction
from seminar.extensions import db
from seminar.models import Job, Registration, Seminar, User
from seminar.programme.service import cancel_seminar, update_seminar
from seminar.registration.service import SignUpData, cancel, confirm, sign_up

from .helpers import csrf_from, future, jobs, work
from .video_kit import fresh


@pytest.fixture
def app(smtp_app):
    """Every fixture here (client, make_seminar) on the app that sends by real SMTP."""
    return smtp_app


def person(seminar, name, email, language="nl") -> int:
    reg = sign_up(seminar.id, SignUpData(name=name, email=email, organisation="BSO De Vlinder",
                                         location_type="bso", language=language))
    confirm(reg.id)
    return reg.id


def attended(seminar, reg_id, minutes):
    with write_transaction():
        record_attendance(seminar.id, reg_id, "joined", seminar.start_at, f"p{reg_id}", "webhook")
        record_attendance(seminar.id, reg_id, "left", seminar.start_at + timedelta(minutes=minutes), f"p{reg_id}", "webhook")


@pytest.fixture
def after(smtp_app, make_seminar):
    """A 60-minute seminar, ended: Anouk attended, Bram (English) too, Carla did not, Daan cancelled."""
    seminar = make_seminar(title="Meldcode in de praktijk", start_at=future(days=2), duration_minutes=60,
                           hosts=["spreker@bmk.example"])
    db.session.add(User(email="organisator@bmk.example", role="organiser", name="Olga"))
    db.session.commit()
    s = fresh(Seminar, seminar.id)
    s.recording_url, s.slides_url = "https://video.example/opname", "https://slides.example/dia"
    db.session.commit()
    ids = {name: person(s, name, f"{name.lower()}@kinderopvang.example", "en" if name == "Bram" else "nl")
           for name in ("Anouk", "Bram", "Carla", "Daan")}
    cancel(ids["Daan"])
    s = fresh(Seminar, s.id)
    attended(s, ids["Anouk"], 60)
    attended(s, ids["Bram"], 50)
    attended(s, ids["Carla"], 20)
    return s, ids


def mails(smtp, address):
    return smtp.recorder.to(address)


def pdf_of(msg) -> tuple[str, PdfReader]:
    [part] = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    reader = PdfReader(io.BytesIO(part.get_content()))
    return part.get_filename(), reader


def text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def test_follow_up_by_attendance(smtp_app, smtp, client, after):
    seminar, ids = after
    end = seminar.end_at
    work(now=end + timedelta(minutes=119))
    assert jobs("attendance.follow_up") == []
    work(now=end + timedelta(minutes=121))
    assert [j.state for j in jobs("attendance.follow_up")] == ["done"]
    follow_ups = ("Aanwezigheid", "Bedankt", "Thank you", "We hebben")
    # Anouk, Bram, Carla, the host and the organiser.
    assert smtp.recorder.wait_for(lambda m: sum(x["Subject"].startswith(follow_ups) for x in m) >= 5, timeout=30)

    [anouk] = mails(smtp, "anouk@kinderopvang.example")[-1:]
    assert "Bedankt voor je deelname" in anouk["Subject"]
    name, reader = pdf_of(anouk)
    assert name.endswith(".pdf") and "Anouk" in reader.pages[0].extract_text()
    body = text(anouk)
    assert "https://video.example/opname" in body and "https://slides.example/dia" in body
    verify = re.search(r"http://seminar\.test(/certificaat/[\w-]+)", body).group(1)
    assert client.get(verify).status_code == 200

    [bram] = mails(smtp, "bram@kinderopvang.example")[-1:]
    assert "Thank you for taking part" in bram["Subject"]
    assert "Certificate of attendance" in pdf_of(bram)[1].pages[0].extract_text()

    [carla] = mails(smtp, "carla@kinderopvang.example")[-1:]
    assert "gemist" in carla["Subject"] and "https://video.example/opname" in text(carla)
    assert not [p for p in carla.iter_attachments() if p.get_content_type() == "application/pdf"]

    assert not [m for m in mails(smtp, "daan@kinderopvang.example") if "gemist" in m["Subject"]
                or "Bedankt" in m["Subject"]]
    for staff in ("spreker@bmk.example", "organisator@bmk.example"):
        [summary] = [m for m in mails(smtp, staff) if m["Subject"].startswith("Aanwezigheid")]
        assert "Aanwezig: 2. Afwezig: 1" in text(summary)
    assert db.session.scalar(db.select(db.func.count(Certificate.id))) == 2

    # The worker again, later: nobody is mailed twice.
    count = len(smtp.messages)
    work(now=end + timedelta(hours=5))
    assert len(smtp.messages) == count


def test_an_evaluation_answered_twice_counts_once_and_is_not_tied_to_the_person(smtp_app, smtp, client, after):
    seminar, ids = after
    work(now=seminar.end_at + timedelta(minutes=121))
    assert smtp.recorder.wait_for(lambda m: any("anouk" in str(x["To"]) and "Bedankt" in x["Subject"] for x in m), 30)
    [anouk] = [m for m in mails(smtp, "anouk@kinderopvang.example") if "Bedankt" in m["Subject"]]
    link = re.search(r"http://seminar\.test(/r/evaluatie/[\w.\-]+)", text(anouk)).group(1)
    page = client.get(link)
    assert page.status_code == 200
    form = {"csrf_token": csrf_from(page.get_data(as_text=True)), "overall": "8", "usefulness": "4",
            "comment": "Heel bruikbaar, meer casuïstiek graag"}
    assert "Dank je wel" in client.post(link, data=form).get_data(as_text=True)
    again = client.post(link, data=dict(form, overall="2"))
    assert "al ingevuld" in again.get_data(as_text=True)
    [answer] = db.session.scalars(db.select(EvaluationAnswer)).all()
    assert (answer.overall, answer.usefulness) == (8, 4)
    # Nothing in the answer leads back to a person: no registration, no time, no address.
    columns = set(EvaluationAnswer.__table__.columns.keys())
    assert columns == {"id", "seminar_id", "overall", "usefulness", "comment"}
    assert not any(fk.column.table.name == "registration" for fk in EvaluationAnswer.__table__.foreign_keys)
    bad = client.post(link.replace("evaluatie/", "evaluatie/x"), data=form)
    assert bad.status_code == 404


def test_hold_keeps_the_follow_up_back_until_released(smtp_app, smtp, after):
    seminar, ids = after
    s = fresh(Seminar, seminar.id)
    s.follow_up_hold = True
    db.session.commit()
    work(now=seminar.end_at + timedelta(hours=3))
    assert jobs("attendance.follow_up") == [] and not [m for m in smtp.messages if "Bedankt" in m["Subject"]]
    s = fresh(Seminar, seminar.id)
    s.start_at -= timedelta(days=3)  # the seminar is over in real time too: release sends now
    db.session.commit()
    followup.release(seminar.id)
    work()
    assert smtp.recorder.wait_for(lambda m: any("Bedankt" in x["Subject"] for x in m), 30)


def test_a_cancelled_seminar_sends_no_follow_up(smtp_app, smtp, after):
    seminar, ids = after
    cancel_seminar(seminar.id)
    work(now=seminar.end_at + timedelta(hours=3))
    assert jobs("attendance.follow_up") == []
    assert not [m for m in smtp.messages if "Bedankt" in m["Subject"] or "gemist" in m["Subject"]]


def test_a_seminar_moved_after_its_follow_up_was_queued_follows_up_at_its_new_time(smtp_app, smtp, after):
    seminar, ids = after
    with write_transaction():
        followup.queue_follow_up(db.session.get(Seminar, seminar.id))
    old_end = seminar.end_at
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=1))
    work(now=old_end + timedelta(hours=3))
    [job] = jobs("attendance.follow_up")
    assert job.state == "done" and "moved" in job.last_error
    assert not [m for m in smtp.messages if "Bedankt" in m["Subject"]]
    moved = fresh(Seminar, seminar.id)
    work(now=moved.end_at + timedelta(hours=3))
    assert len(jobs("attendance.follow_up")) == 2


def test_a_recording_added_later_can_be_announced_once(smtp_app, smtp, after):
    seminar, ids = after
    s = fresh(Seminar, seminar.id)
    s.recording_url = None
    db.session.commit()
    work(now=seminar.end_at + timedelta(minutes=121))
    assert followup.follow_up_sent(fresh(Seminar, seminar.id))
    assert followup.send_recording_mail(seminar.id) == 0  # no recording yet
    s = fresh(Seminar, seminar.id)
    s.recording_url = "https://video.example/later"
    db.session.commit()
    assert followup.send_recording_mail(seminar.id) == 3
    followup.send_recording_mail(seminar.id)  # pressed twice: still once each
    work(now=seminar.end_at + timedelta(minutes=200))
    online = lambda m: [x for x in m if x["Subject"].startswith(("De opname staat online", "The recording is online"))]  # noqa: E731
    assert smtp.recorder.wait_for(lambda m: len(online(m)) >= 3, timeout=30)
    work(now=seminar.end_at + timedelta(minutes=300))
    assert sorted(str(m["To"]).split("<")[-1].rstrip(">") for m in online(smtp.messages)) == [
        "anouk@kinderopvang.example", "bram@kinderopvang.example", "carla@kinderopvang.example"]


def test_a_correction_after_the_follow_up_issues_or_revokes_the_certificate(smtp_app, smtp, client, after):
    from seminar.attendance.service import correct
    seminar, ids = after
    work(now=seminar.end_at + timedelta(minutes=121))
    assert smtp.recorder.wait_for(lambda m: any("gemist" in x["Subject"] for x in m), 30)
    # Carla did come after all (by phone); Bram's minutes were someone else's.
    correct(ids["Carla"], attended=True, reason="Telefonisch ingebeld", user=None)
    assert followup.after_correction(ids["Carla"]) == "certificate queued"
    correct(ids["Bram"], attended=False, reason="Was iemand anders", user=None)
    assert followup.after_correction(ids["Bram"]) == "certificate revoked"
    work(now=seminar.end_at + timedelta(minutes=200))
    assert smtp.recorder.wait_for(lambda m: any("carla" in str(x["To"]) and "Bedankt" in x["Subject"] for x in m), 30)
    bram = db.session.scalar(db.select(Certificate).where(Certificate.registration_id == ids["Bram"]))
    assert client.get(f"/certificaat/{bram.code}").status_code == 404
    # Carla was in for 20 of 60 minutes: present by the organiser's word counts the minimum.
    carla = db.session.scalar(db.select(Certificate).where(Certificate.registration_id == ids["Carla"]))
    assert carla.minutes >= fresh(Seminar, seminar.id).minimum_minutes == 45


def test_a_certificate_queued_before_a_correction_to_absent_is_not_made(smtp_app, smtp, after):
    """The certificate job reads attendance when it runs, not when it was queued."""
    from seminar.attendance.service import correct
    from seminar.jobs import kinds
    seminar, ids = after
    with write_transaction():
        kinds.CERTIFICATE.enqueue(registration=db.session.get(Registration, ids["Carla"]), minutes=60)
    correct(ids["Anouk"], attended=False, reason="Was iemand anders", user=None)
    with write_transaction():
        kinds.CERTIFICATE.enqueue(registration=db.session.get(Registration, ids["Anouk"]), minutes=60)
    work(now=seminar.start_at + timedelta(minutes=61))
    assert db.session.scalars(db.select(Certificate)).all() == []
    assert {j.state for j in jobs(kinds.CERTIFICATE.name)} == {"done"}
