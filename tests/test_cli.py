"""The command line of CONTRACT.md, through Flask's CLI runner."""
from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from seminar.extensions import db
from seminar.models import Job, Seminar, User
from seminar.registration.service import SignUpData, confirm, sign_up

from .helpers import read_eml


def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def create(runner, *extra):
    code, out = invoke(runner, "seminar", "create", "--title", "Trauma-sensitief werken en opvoeden",
                       "--start", "2027-06-11 10:00", "--duration", "90", "--capacity", "2", *extra)
    assert code == 0, out
    seminar_id, url = out.strip().splitlines()[-1].split(" ")
    return int(seminar_id), url


def test_create_prints_id_and_url_and_stores_local_time(runner):
    seminar_id, url = create(runner, "--host", "host@bmk.example", "--publish")
    seminar = db.session.get(Seminar, seminar_id)
    assert url == f"http://seminar.test/seminars/{seminar.slug}"
    assert seminar.start_at.isoformat() == "2027-06-11T08:00:00+00:00"  # 10:00 CEST
    assert seminar.is_published and [h.email for h in seminar.hosts] == ["host@bmk.example"]
    assert db.session.scalar(db.select(Job.kind).where(Job.seminar_id == seminar_id)) == "video.create_meeting"


def test_list_publish_update_cancel(app, runner):
    seminar_id, _ = create(runner)
    code, out = invoke(runner, "seminar", "list")
    assert out.strip() == f"{seminar_id}  2027-06-11 10:00  Trauma-sensitief werken en opvoeden  0/2 confirmed  0 waitlisted  [draft]"
    assert invoke(runner, "seminar", "publish", str(seminar_id))[0] == 0
    regs = [sign_up(seminar_id, SignUpData(name=f"P{i}", email=f"p{i}@x.nl", organisation="O",
                                           location_type="bso")) for i in range(3)]
    for reg in regs:
        confirm(reg.id)
    code, out = invoke(runner, "seminar", "list")
    assert "2/2 confirmed  1 waitlisted" in out

    code, out = invoke(runner, "seminar", "update", str(seminar_id), "--start", "2027-06-18 14:00")
    assert code == 0, out
    invoke(runner, "worker", "--once")
    changed = [m for m in read_eml(app) if m["Subject"].startswith("Gewijzigd")]
    assert len(changed) == 2  # the two confirmed attendees, not the waitlisted one

    assert invoke(runner, "seminar", "cancel", str(seminar_id))[0] == 0
    invoke(runner, "worker", "--once")
    cancelled = [m for m in read_eml(app) if m["Subject"].startswith("Geannuleerd")]
    assert len(cancelled) == 3


def test_attendees_csv_and_xlsx(runner, tmp_path):
    seminar_id, _ = create(runner, "--publish")
    reg = sign_up(seminar_id, SignUpData(name="=HYPERLINK(\"x\")", email="a@x.nl", organisation="@KDV",
                                         location_type="kdv"))
    confirm(reg.id)
    code, out = invoke(runner, "seminar", "attendees", str(seminar_id))
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:3] == ["Naam", "E-mail", "Organisatie"]
    assert rows[1][:3] == ["'=HYPERLINK(\"x\")", "a@x.nl", "'@KDV"]
    target = tmp_path / "lijst.xlsx"
    assert invoke(runner, "seminar", "attendees", str(seminar_id), "--format", "xlsx", "--output", str(target))[0] == 0
    sheet = load_workbook(target).active
    assert [c.value for c in sheet[2]][:2] == ["'=HYPERLINK(\"x\")", "a@x.nl"]


def test_clear_errors_for_bad_arguments(runner):
    code, out = invoke(runner, "seminar", "create", "--title", "X", "--start", "11-06-2027",
                       "--duration", "90", "--capacity", "2")
    assert code == 2 and "YYYY-MM-DD HH:MM" in out
    code, out = invoke(runner, "seminar", "publish", "999")
    assert code == 1 and "no seminar with id 999" in out
    seminar_id, _ = create(runner, "--publish")
    for i in range(2):
        confirm(sign_up(seminar_id, SignUpData(name=f"P{i}", email=f"p{i}@x.nl", organisation="O",
                                               location_type="kdv")).id)
    code, out = invoke(runner, "seminar", "update", str(seminar_id), "--capacity", "1")
    assert code == 1 and "below the 2 confirmed" in out


def test_user_create_hashes_the_password(runner):
    code, out = invoke(runner, "user", "create", "--email", "Org@BMK.example", "--role", "organiser",
                       "--password", "lang-genoeg-wachtwoord")
    assert code == 0, out
    user = db.session.scalar(db.select(User))
    assert user.email == "org@bmk.example" and user.password_hash.startswith("scrypt:")
    code, out = invoke(runner, "user", "create", "--email", "x@y.nl", "--role", "host", "--password", "kort")
    assert code == 1 and "at least 10" in out


def test_reminder_and_digest_hours_per_seminar(runner):
    seminar_id, _ = create(runner, "--reminder-hours", "1, 48", "--digest-hours", "2")
    seminar = db.session.get(Seminar, seminar_id)
    assert (seminar.reminder_hours, seminar.digest_hours) == ("48,1", "2")
    code, out = invoke(runner, "seminar", "update", str(seminar_id), "--reminder-hours", "morgen")
    assert code == 2 and "whole hours" in out
