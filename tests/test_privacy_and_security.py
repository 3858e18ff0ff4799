"""Privacy by default and the security basics: headers, honeypot, no personal data in logs,
retention purge, and export/erasure of one person's data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from seminar import privacy
from seminar.extensions import db
from seminar.models import Job, PurgeLog, Registration
from seminar.registration.service import SignUpData, confirm, sign_up
from seminar.timeutil import utcnow

from .helpers import Person, links_in, read_eml, work

ROOT = Path(__file__).resolve().parent.parent


def test_security_headers(client, make_seminar):
    seminar = make_seminar()
    for path in ("/", f"/seminars/{seminar.slug}", "/bestaat-niet"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in headers  # plain http here
    assert client.get("/r/manage/x").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("app_config", [{"BASE_URL": "https://seminars.example"}])
def test_hsts_and_secure_cookie_behind_https(client, app):
    assert "max-age=" in client.get("/").headers["Strict-Transport-Security"]


def test_pages_use_no_inline_script_or_style(client, make_seminar, person):
    seminar = make_seminar()
    response = person.sign_up(seminar, name="")  # the form with errors shown
    for page in (client.get("/").get_data(as_text=True), response.get_data(as_text=True)):
        assert "<script" not in page and "<style" not in page and "style=" not in page


def test_honeypot_stores_nothing_but_looks_the_same(person, make_seminar):
    seminar = make_seminar()
    response = person.sign_up(seminar, website="http://spam.example")
    assert response.status_code == 303
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == 0


def test_no_personal_data_in_worker_logs(app, make_seminar, smtp, db_url):
    """A real worker process logs a permanent SMTP refusal that quotes the address: the line that
    is written names the job, never the person."""
    smtp.recorder.refuse.add("vertrouwelijk@kinderopvang.example")
    seminar = make_seminar()
    sign_up(seminar.id, SignUpData(name="Vertrouwelijke Naam", email="vertrouwelijk@kinderopvang.example",
                                   organisation="KDV", location_type="kdv"))

    async def refuse_quoting(server, session, envelope, address, rcpt_options):
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    smtp.recorder.handle_RCPT = refuse_quoting
    env = dict(os.environ, DATABASE_URL=db_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port),
               SECRET_KEY="test-secret", BASE_URL="http://seminar.test", VIDEO_PROVIDER="jitsi")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--once"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    db.session.rollback()
    job = db.session.scalar(db.select(Job).where(Job.kind == "mail.confirm_address"))
    assert job.state == "failed"
    assert "failed permanently" in result.stderr  # the problem is logged ...
    assert "vertrouwelijk" not in result.stderr.lower()  # ... without the address
    assert "Vertrouwelijke Naam" not in result.stderr


def confirmed(seminar, n, start=0):
    regs = []
    for i in range(start, start + n):
        reg = sign_up(seminar.id, SignUpData(name=f"Persoon {i}", email=f"p{i}@kdv.example",
                                             organisation="KDV", location_type="bso"))
        regs.append(confirm(reg.id))
    return regs


def test_retention_purge_removes_personal_data_and_keeps_counts(app, make_seminar, runner):
    past = make_seminar(title="Vorig jaar")
    confirmed(past, 3)
    lapsed = sign_up(past.id, SignUpData(name="Nooit bevestigd", email="lapsed@kdv.example",
                                         organisation="KDV", location_type="kdv"))
    work()
    past.start_at = utcnow() - timedelta(days=200)
    db.session.commit()
    current = make_seminar(title="Binnenkort")
    confirmed(current, 1, start=10)
    work()

    result = runner.invoke(args=["privacy", "purge", "--dry-run"])
    assert "would purge 4 registrations in total" in result.output
    assert db.session.scalar(db.select(db.func.count(PurgeLog.id)).where(PurgeLog.reason != "scheduled-run")) == 0

    result = runner.invoke(args=["privacy", "purge"])
    assert result.exit_code == 0 and "purged 4 registrations in total" in result.output
    db.session.expire_all()
    gone = db.session.scalars(db.select(Registration).where(Registration.seminar_id == past.id)).all()
    assert {r.status for r in gone} == {"purged"}
    assert all(r.name == r.email == r.organisation == "" for r in gone)
    assert {r.location_type for r in gone} == {"bso", "kdv"}  # anonymous counts stay
    assert db.session.scalars(db.select(Job.message).where(
        Job.registration_id.in_([r.id for r in gone]), Job.message.is_not(None))).all() == []
    kept = db.session.scalars(db.select(Registration).where(Registration.seminar_id == current.id)).one()
    assert kept.email == "p10@kdv.example"
    log = db.session.scalars(db.select(PurgeLog).where(PurgeLog.reason == "retention")).one()
    assert (log.seminar_id, log.registrations) == (past.id, 4)  # three seats and the lapsed one
    dump = json.dumps([(l.reason, l.registrations, l.messages) for l in db.session.scalars(db.select(PurgeLog))])
    assert "kdv.example" not in dump
    assert lapsed.id in [r.id for r in gone]


def test_purge_asks_the_platform_to_remove_registrants(app, make_seminar):
    seminar = make_seminar()
    [reg] = confirmed(seminar, 1)
    reg.platform_registrant_id = "zoom-registrant-1"
    seminar.start_at = utcnow() - timedelta(days=400)
    db.session.commit()
    privacy.purge()
    job = db.session.scalar(db.select(Job).where(Job.kind == "video.remove_attendee"))
    assert job is not None and job.registration_id == reg.id
    assert db.session.scalar(db.select(PurgeLog.platform_removals).where(PurgeLog.reason == "retention")) == 1


def test_export_and_erase_one_person(app, client, make_seminar, runner, tmp_path):
    seminar = make_seminar(capacity=1)
    anouk = Person(client)
    anouk.sign_up(seminar)
    work()
    anouk.press_button(links_in(read_eml(app)[-1])["confirm"])
    work()
    seat_mail = read_eml(app)[-1]
    waiting = confirmed(seminar, 1)[0]
    assert waiting.status == "waitlisted"

    out = tmp_path / "export.json"
    assert runner.invoke(args=["privacy", "export", "--email", "Anouk@Kinderopvang.example",
                               "--output", str(out)]).exit_code == 0
    data = json.loads(out.read_text())
    [entry] = data["registrations"]
    assert entry["name"] == "Anouk de Vries" and entry["status"] == "confirmed"
    assert {m["kind"] for m in entry["mails"]} >= {"confirm_address", "seat_confirmed"}

    result = runner.invoke(args=["privacy", "erase", "--email", "anouk@kinderopvang.example", "--yes"])
    assert result.exit_code == 0 and "erased 1" in result.output
    db.session.expire_all()
    assert db.session.get(Registration, waiting.id).status == "confirmed"  # the seat moved on
    assert anouk.follow(links_in(seat_mail)["manage"]).status_code == 404
    assert json.loads(runner.invoke(args=["privacy", "export", "--email", "anouk@kinderopvang.example"]).output)["registrations"] == []
