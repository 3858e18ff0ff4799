"""Zoom, end to end: the site and the worker against the Zoom stand-in (tests/standins/zoom.py),
which checks every request and answer against Zoom's OpenAPI document."""
from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from seminar.extensions import db
from seminar.models import Registration, Seminar
from seminar.programme.service import cancel_seminar, update_seminar
from seminar.registration.service import SignUpData, cancel, confirm, sign_up
from seminar.timeutil import utcnow
from seminar.video import get_provider, http
from seminar.video.http import shared_token
from seminar.video.zoom import zulu

from seminar.jobs.runner import run_batch

from .helpers import future, jobs, later, links_in, make_app, registrations, work
from .video_kit import app_config, zoom, zoom_stays_clean  # noqa: F401  (fixtures)
from .video_kit import (added_addresses, approved, calls, confirm_many, enable_logs, fresh, join_target,
                        mails_to, meeting_id, seat_mails, sign_up_through_site,
                        signed_up_after_three_adds_today, zoom_config)


# ---------------------------------------------------------------- the flow

def test_publishing_creates_the_meeting_through_the_worker(app, runner, zoom, make_seminar):
    seminar = make_seminar(title="Veilig hechten", description="Over hechting", publish=False)
    result = runner.invoke(args=["seminar", "publish", str(seminar.id)])
    assert result.exit_code == 0, result.output
    assert zoom.calls == [] and zoom.token_requests == 0  # never inside the command or a request

    work()
    seminar = fresh(Seminar, seminar.id)
    meeting = zoom.meetings[int(seminar.meeting_id)]
    assert seminar.video_provider == "zoom" and seminar.meeting_join_url == meeting["join_url"]
    assert seminar.meeting_host_url == meeting["start_url"] and seminar.platform_error is None
    assert (meeting["topic"], meeting["type"], meeting["duration"]) == ("Veilig hechten", 2, 90)
    assert meeting["start_time"] == zulu(seminar.start_at) and meeting["agenda"] == "Over hechting"
    settings = meeting["settings"]
    # Registration required with manual approval: Zoom's own page cannot let outsiders in.
    assert settings["approval_type"] == 1 and settings["registration_type"] == 1
    assert settings["registrants_email_notification"] is False
    assert settings["registrants_confirmation_email"] is False
    assert settings["close_registration"] is True and settings["show_share_button"] is False
    assert settings["allow_multiple_devices"] is False
    assert zoom.token_requests == 1


def test_confirmed_attendees_get_their_own_zoom_link(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    sign_up_through_site(app, client, seminar, "Bram Jansen", "bram@bso.example")
    work()

    mid = meeting_id(seminar)
    at_zoom = {r["email"]: r for r in zoom.registrants_of(mid)}
    assert {r["status"] for r in at_zoom.values()} == {"approved"}
    anouk = at_zoom["anouk@kinderopvang.example"]
    assert (anouk["first_name"], anouk["last_name"]) == ("Anouk", "de Vries")
    # Our data only, and approved by us.
    for call in calls(zoom, "POST", "/registrants"):
        assert set(call.json) == {"email", "first_name", "last_name", "auto_approve"}
        assert call.json["auto_approve"] is True
    # The mailed link leads to exactly that registrant's join_url.
    assert join_target(client, app, "anouk@kinderopvang.example") == anouk["join_url"]
    assert join_target(client, app, "bram@bso.example") == at_zoom["bram@bso.example"]["join_url"]
    assert sorted(seat_mails(app).values()) == [1, 1]
    for reg in registrations():
        assert reg.platform_registrant_id == at_zoom[reg.email]["id"]


def test_the_seat_mail_waits_until_zoom_has_the_registrant(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    # A hiccup is tried again at once (see the next test); Zoom failing twice in a row is not.
    zoom.fail_next(2, status=503, path_contains="/registrants")
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()

    [reg] = registrations()
    assert reg.status == "confirmed" and reg.join_url is None
    assert seat_mails(app) == Counter()
    [job] = jobs("video.add_attendee")
    assert job.state == "pending" and "503" in job.last_error
    assert "503" in fresh(Seminar, seminar.id).platform_error  # flagged for organisers

    work(now=later())
    assert seat_mails(app) == Counter({"Anouk de Vries <anouk@kinderopvang.example>": 1})
    assert join_target(client, app, "anouk@kinderopvang.example") == approved(zoom, meeting_id(seminar))[
        "anouk@kinderopvang.example"]
    assert fresh(Seminar, seminar.id).platform_error is None


def test_one_hiccup_is_tried_again_at_once_and_not_flagged(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    zoom.fail_next(1, status=503, path_contains="/registrants")
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()

    assert [c.status for c in calls(zoom, "POST", "/registrants")] == [503, 201]
    assert seat_mails(app) == Counter({"Anouk de Vries <anouk@kinderopvang.example>": 1})
    assert fresh(Seminar, seminar.id).platform_error is None
    [job] = jobs("video.add_attendee")
    assert job.state == "done" and job.attempts == 1


def test_a_failure_after_a_success_stays_flagged(app, zoom, make_seminar):
    seminar = make_seminar(capacity=50)
    work()
    confirm_many(seminar, 40)
    zoom.fail_next(2, status=503, path_contains="/batch_registrants", skip=1)
    run_batch()

    assert [c.status for c in calls(zoom, "POST", "/batch_registrants")] == [200, 503, 503]
    assert "503" in fresh(Seminar, seminar.id).platform_error
    assert sum(1 for r in registrations() if r.join_url) == 30


def test_many_confirmations_go_in_batches_of_thirty(app, zoom, make_seminar):
    seminar = make_seminar(capacity=50)
    work()
    people = [sign_up(seminar.id, SignUpData(name=f"Persoon {i}", email=f"p{i:02d}@kdv.example",
                                             organisation="KDV", location_type="kdv")) for i in range(35)]
    work()  # the confirmation mails
    for reg in people:  # everyone confirms at once
        confirm(reg.id)
    work()

    batches = calls(zoom, "POST", "/batch_registrants")
    assert [len(c.json["registrants"]) for c in batches] == [30, 5]
    assert all(c.json["auto_approve"] is True for c in batches)
    assert all(set(r) == {"email", "first_name", "last_name"} for c in batches for r in c.json["registrants"])
    regs = registrations()
    assert {r.email: r.join_url for r in regs} == approved(zoom, meeting_id(seminar))
    assert len({r.join_url for r in regs}) == 35 and all(r.platform_registrant_id for r in regs)
    assert sorted(set(seat_mails(app).values())) == [1] and len(seat_mails(app)) == 35


def test_reschedule_patches_the_meeting(app, zoom, make_seminar):
    seminar = make_seminar()
    work()
    new_start = seminar.start_at + timedelta(days=2, hours=3)
    update_seminar(seminar.id, start_at=new_start, duration_minutes=120, title="Nieuwe titel")
    work()

    [patch] = calls(zoom, "PATCH")
    assert patch.json["start_time"] == zulu(new_start)
    meeting = zoom.meetings[meeting_id(seminar)]
    assert (meeting["start_time"], meeting["duration"], meeting["topic"]) == (zulu(new_start), 120, "Nieuwe titel")


def test_cancelling_the_seminar_deletes_the_meeting_and_cancels_registrants(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    confirm_many(seminar, 2)
    work()
    mid = meeting_id(seminar)

    cancel_seminar(seminar.id)
    work()
    assert mid in zoom.deleted and mid not in zoom.meetings
    [status] = calls(zoom, "PUT", "/registrants/status")
    assert status.json["action"] == "cancel" and len(status.json["registrants"]) == 3
    assert {r["status"] for r in zoom.deleted[mid]["registrants"]} == {"denied"}
    [delete] = calls(zoom, "DELETE")
    assert delete.path == f"/v2/meetings/{mid}"
    assert delete.query == {"schedule_for_reminder": "false", "cancel_meeting_reminder": "false"}
    [mail] = [m for m in mails_to(app, "anouk@kinderopvang.example") if "join" in links_in(m)]
    assert client.get(links_in(mail)["join"].replace("http://seminar.test", "")).status_code == 410


def test_cancellation_removes_the_registrant_and_the_next_one_gets_a_link(app, client, zoom, make_seminar):
    seminar = make_seminar(capacity=1)
    work()
    anouk = sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()
    sign_up_through_site(app, client, seminar, "Bram Jansen", "bram@bso.example")
    work()
    first, second = registrations()
    assert (first.status, second.status) == ("confirmed", "waitlisted")

    [seat] = [m for m in mails_to(app, "anouk@kinderopvang.example") if "join" in links_in(m)]
    anouk.press_button(links_in(seat)["manage"])
    work()

    [status] = calls(zoom, "PUT", "/registrants/status")
    assert status.json == {"action": "cancel", "registrants": [{"id": first.platform_registrant_id}]}
    mid = meeting_id(seminar)
    assert {r["email"]: r["status"] for r in zoom.registrants_of(mid)} == {
        "anouk@kinderopvang.example": "denied", "bram@bso.example": "approved"}
    assert join_target(client, app, "bram@bso.example") == approved(zoom, mid)["bram@bso.example"]
    assert client.get(links_in(seat)["join"].replace("http://seminar.test", "")).status_code == 410


def test_webinars_when_zoom_meeting_kind_is_webinar(app, client, zoom, make_seminar, db_url, tmp_path):
    other = make_app(db_url, tmp_path, **zoom_config(zoom, ZOOM_MEETING_KIND="webinar"))
    with other.app_context():
        seminar = make_seminar()
        work()
        wid = meeting_id(seminar)
        webinar = zoom.webinars[wid]
        assert webinar["type"] == 5 and webinar["settings"]["approval_type"] == 1
        [reg_id] = confirm_many(seminar, 1)
        work()
        # The webinar single-add call has no auto_approve: one attendee goes as a batch of one.
        [batch] = calls(zoom, "POST", f"/webinars/{wid}/batch_registrants")
        assert batch.json["auto_approve"] is True and len(batch.json["registrants"]) == 1
        reg = fresh(Registration, reg_id)
        assert reg.join_url == approved(zoom, wid)[reg.email]
        cancel(reg_id)
        cancel_seminar(seminar.id)
        work()
        assert calls(zoom, "PUT", f"/webinars/{wid}/registrants/status")
        [delete] = calls(zoom, "DELETE")
        assert delete.path == f"/v2/webinars/{wid}" and delete.query == {"cancel_webinar_reminder": "false"}
        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------- tokens

def test_an_expired_token_is_refreshed_once_and_the_call_made_again(app, zoom, make_seminar):
    seminar = make_seminar()
    work()
    assert zoom.token_requests == 1
    zoom.expire_tokens()
    [first] = confirm_many(seminar, 1)
    work()
    assert zoom.token_requests == 2 and fresh(Registration, first).join_url

    # Refused again with a fresh token: refreshed once only, and the job waits.
    zoom.fail_next(2, status=401, body=json.dumps({"code": 124, "message": "Invalid access token."}).encode())
    [second] = confirm_many(seminar, 1, prefix="tweede")
    work()
    assert zoom.token_requests == 3
    [job] = [j for j in jobs("video.add_attendee") if j.registration_id == second]
    assert job.state == "pending" and "401" in job.last_error
    work(now=later(1))
    assert fresh(Registration, second).join_url and zoom.token_requests == 3


def test_two_app_instances_share_one_token(app, zoom, make_seminar, db_url, tmp_path, app_config):
    seminar = make_seminar()
    work()
    assert zoom.token_requests == 1
    seminar_id = seminar.id  # read here: objects of this app's session stay out of the other's
    db.session.rollback()
    other = make_app(db_url, tmp_path, **app_config)
    with other.app_context():
        [reg_id] = confirm_many(db.session.get(Seminar, seminar_id), 1)
        work()
        assert db.session.get(Registration, reg_id).join_url
        db.session.remove()
        db.engine.dispose()
    assert zoom.token_requests == 1


def test_two_processes_refreshing_at_once_ask_for_one_token(app, zoom, db_url, tmp_path, app_config):
    """Both find no token; one asks Zoom, the other waits for the row lock and uses it."""
    zoom.delay_next(1, 0.5, path_contains="/oauth/token")  # a slow token endpoint widens the race
    start, tokens, errors = threading.Barrier(2, timeout=30), [], []
    # Built here: Python 3.11 can trip over two threads compiling templates and code at once.
    apps = [make_app(db_url, tmp_path, **app_config) for _ in range(2)]

    def process(other):
        with other.app_context():
            try:
                provider = get_provider("zoom")
                start.wait()
                tokens.append(shared_token("zoom", provider.fetch_token))
                provider.close()
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()
                db.engine.dispose()

    threads = [threading.Thread(target=process, args=(other,), daemon=True) for other in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert zoom.token_requests == 1 and len(set(tokens)) == 1 and len(tokens) == 2


# ---------------------------------------------------------------- rate limits

@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_and_zoom_not_hammered(app, zoom, make_seminar, form):
    seminar = make_seminar()
    work()
    begin = utcnow()
    wait = 420 if form == "seconds" else begin + timedelta(minutes=7)
    zoom.fail_next(1, status=429, retry_after=wait, path_contains="registrants")
    confirm_many(seminar, 3)
    work()

    assert len(calls(zoom, contains="registrants")) == 1  # one try, then we wait
    pending = jobs("video.add_attendee")
    assert {j.state for j in pending} == {"pending"}
    assert all(j.due_at >= begin + timedelta(seconds=419) for j in pending)
    assert "429" in fresh(Seminar, seminar.id).platform_error
    work(now=begin + timedelta(minutes=6))
    assert len(calls(zoom, contains="registrants")) == 1  # not yet
    work(now=begin + timedelta(minutes=10))
    assert all(r.join_url for r in registrations())
    assert fresh(Seminar, seminar.id).platform_error is None


def test_daily_limit_for_one_address_waits_until_tomorrow_and_holds_up_nobody(app, zoom, make_seminar):
    """Zoom allows 3 adds per address per day. Someone who signed up and cancelled three times
    today waits until tomorrow (Zoom's ISO Retry-After); the others in the same batch go now."""
    seminar = make_seminar(capacity=20)
    work()
    carla = signed_up_after_three_adds_today(seminar)
    others = confirm_many(seminar, 2, prefix="vandaag")
    confirm(carla.id)
    before = utcnow()
    work()

    assert all(fresh(Registration, i).join_url for i in others)
    [job] = [j for j in jobs("video.add_attendee") if j.registration_id == carla.id]
    tomorrow = datetime.combine(before.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    assert job.state == "pending" and job.due_at >= tomorrow - timedelta(seconds=1)
    assert "daily limit" in job.last_error and "@" not in job.last_error  # no address in errors
    assert "@" not in (fresh(Seminar, seminar.id).platform_error or "")
    assert fresh(Registration, carla.id).join_url is None

    zoom.utcnow = lambda: datetime.now(timezone.utc) + timedelta(days=1)  # Zoom's day is over
    work(now=tomorrow + timedelta(minutes=5))
    carla = fresh(Registration, carla.id)
    assert carla.join_url == approved(zoom, meeting_id(seminar))["carla@gastouder.example"]


def test_five_percent_failures_lose_nothing_and_add_nobody_twice(app, zoom, make_seminar):
    seminar = make_seminar(capacity=60)
    zoom.failure_rate = 0.05
    # On top of the random 5 %, one of each for certain: a 429 and a 5xx on adding registrants.
    zoom.fail_next(1, status=429, retry_after=1, path_contains="registrants")
    zoom.fail_next(1, status=502, path_contains="registrants")
    now = utcnow()
    # People confirm in waves of 1 to 4 while the worker runs, so there are many separate calls.
    for wave, size in enumerate([1, 3, 2, 4, 1, 1, 2, 3, 4, 1, 2, 1, 3, 4, 2, 1, 2, 3]):
        confirm_many(seminar, size, prefix=f"golf{wave}-")
        work(now=now)
        now += timedelta(minutes=10)
    for _ in range(40):
        work(now=now)
        if all(j.state in ("done", "failed") for j in jobs() if j.kind.startswith("video.")):
            break
        now += timedelta(hours=1)

    statuses = {c.status for c in zoom.calls}
    assert 429 in statuses and statuses & {500, 502, 503, 504}  # faults did happen
    regs = registrations()
    assert len(regs) == 40 and all(r.status == "confirmed" for r in regs)
    assert {r.email: r.join_url for r in regs} == approved(zoom, meeting_id(seminar))
    assert set(added_addresses(zoom).values()) == {1}  # nobody added twice
    assert sorted(seat_mails(app).values()) == [1] * 40  # everybody mailed once
    assert {j.state for j in jobs() if j.kind.startswith("video.")} == {"done"}
    assert len(zoom.meetings) == 1


# ---------------------------------------------------------------- bad answers

@pytest.mark.parametrize("body,ctype,said", [
    (b"<html><body>502 Bad Gateway</body></html>", "text/html", "HTML"),
    (b"", None, "empty body"),
    (b"\x00\xff{not json", "application/json", "unreadable"),
])
def test_garbage_answers_are_retried_and_flagged(app, zoom, make_seminar, body, ctype, said):
    seminar = make_seminar()
    zoom.fail_next(1, status=201, body=body, content_type=ctype, path_contains="/users/me/meetings")
    work()
    flagged = fresh(Seminar, seminar.id)
    assert flagged.meeting_id is None and said in flagged.platform_error
    [job] = jobs("video.create_meeting")
    assert job.state == "pending"

    work(now=later())
    assert len(zoom.meetings) == 1 and meeting_id(seminar) in zoom.meetings
    assert fresh(Seminar, seminar.id).platform_error is None


def test_garbage_answer_to_an_add_loses_nobody(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    zoom.fail_next(2, status=200, body=b"<html>maintenance</html>", content_type="text/html",
                   path_contains="/batch_registrants")
    confirm_many(seminar, 2)
    work()
    assert not any(r.join_url for r in registrations())
    work(now=later())
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, meeting_id(seminar))


def test_a_slow_create_is_retried_without_a_second_meeting(app, zoom, make_seminar, monkeypatch):
    monkeypatch.setattr(http, "TIMEOUT", (5, 0.2))
    created = threading.Event()
    original = zoom._collection

    def collection(*args, **kwargs):
        answer = original(*args, **kwargs)
        created.set()
        return answer

    zoom._collection = collection
    zoom.delay_next(1, 0.6, path_contains="/users/me/meetings", method="POST")
    seminar = make_seminar()
    work()
    assert "did not answer in time" in fresh(Seminar, seminar.id).platform_error
    assert created.wait(10)  # Zoom made it after all, after we gave up waiting

    work(now=later())
    assert len(zoom.meetings) == 1 and meeting_id(seminar) in zoom.meetings  # adopted, not doubled


def test_zoom_down_for_a_while_loses_no_registration(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    zoom.fail_next(1000, status=503)
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()  # the worker keeps running: mails go, the platform job waits
    [reg] = registrations()
    assert reg.status == "confirmed" and reg.join_url is None
    [job] = jobs("video.add_attendee")
    assert job.state == "pending" and "503" in job.last_error
    zoom.clear_faults()
    work(now=later(1))
    assert join_target(client, app, "anouk@kinderopvang.example") == approved(zoom, meeting_id(seminar))[
        "anouk@kinderopvang.example"]


def test_capacity_reached_is_flagged_and_nothing_is_lost(app, zoom, make_seminar):
    seminar = make_seminar(capacity=5)
    work()
    mid = meeting_id(seminar)
    zoom.set_capacity(mid, 1)
    confirm_many(seminar, 3)
    work()
    flagged = fresh(Seminar, seminar.id)
    assert "maximum number of attendees" in flagged.platform_error
    assert {j.state for j in jobs("video.add_attendee")} == {"pending"}
    assert all(j.due_at >= utcnow() + timedelta(minutes=55) for j in jobs("video.add_attendee"))

    zoom.set_capacity(mid, 10)  # the organiser raised it at Zoom
    work(now=later(2))
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, mid)
    assert fresh(Seminar, seminar.id).platform_error is None


def test_meeting_deleted_at_zoom_is_made_anew_and_mailed_links_keep_working(app, client, zoom, make_seminar):
    seminar = make_seminar()
    work()
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()
    old = meeting_id(seminar)
    zoom.deleted[old] = zoom.meetings.pop(old)  # someone deleted it in Zoom's web portal

    confirm_many(seminar, 1)  # the next add meets "Meeting does not exist" (3001)
    work()
    new = meeting_id(seminar)
    assert new != old and new in zoom.meetings
    assert any("made anew" in (j.last_error or "") for j in jobs("video.add_attendee"))
    at_zoom = approved(zoom, new)
    assert {r.email: r.join_url for r in registrations()} == at_zoom
    # Anouk's link from her first mail leads to her new registrant link; no second seat mail.
    assert join_target(client, app, "anouk@kinderopvang.example") == at_zoom["anouk@kinderopvang.example"]
    assert sorted(seat_mails(app).values()) == [1, 1]


def test_reschedule_of_a_meeting_deleted_at_zoom_makes_a_new_one(app, zoom, make_seminar):
    seminar = make_seminar()
    work()
    old = meeting_id(seminar)
    zoom.deleted[old] = zoom.meetings.pop(old)
    new_start = seminar.start_at + timedelta(days=1)
    update_seminar(seminar.id, start_at=new_start)
    work()
    new = meeting_id(seminar)
    assert new != old and zoom.meetings[new]["start_time"] == zulu(new_start)


def test_cancel_after_the_meeting_was_deleted_at_zoom(app, zoom, make_seminar):
    seminar = make_seminar()
    work()
    old = meeting_id(seminar)
    zoom.deleted[old] = zoom.meetings.pop(old)
    cancel_seminar(seminar.id)
    work()
    [job] = jobs("video.delete_meeting")
    assert job.state == "done" and "already gone" in job.last_error


# ---------------------------------------------------------------- the nightly reconcile

def test_nightly_reconcile_puts_zoom_in_step_with_our_list(app, zoom, make_seminar):
    seminar = make_seminar()
    work()
    confirm_many(seminar, 3)
    zoom.fail_next(1, status=400, body=json.dumps({"code": 300, "message": "Bad request"}).encode(),
                   path_contains="/batch_registrants")
    work()  # a permanent failure: these three never got a link
    assert {j.state for j in jobs("video.add_attendee")} == {"failed"}
    work(now=later(1))
    ours = confirm_many(seminar, 2, prefix="later")
    work(now=later(1))
    mid = meeting_id(seminar)
    meeting = zoom.meetings[mid]
    # At Zoom, by hand: one of ours removed, an outsider approved, another registered on Zoom's
    # own page (pending), the time shortened.
    gone = fresh(Registration, ours[0])
    meeting["registrants"] = [r for r in meeting["registrants"] if r["email"] != gone.email]
    zoom._register(meeting, {"email": "buiten@example.com", "first_name": "Buiten"}, approved=True)
    zoom._register(meeting, {"email": "pagina@example.com", "first_name": "Pagina"}, approved=False)
    meeting["duration"] = 30

    work(now=later(23))
    assert not calls(zoom, "GET", f"/meetings/{mid}")  # not due yet
    work(now=later(25))
    assert meeting["duration"] == 90
    states = {r["email"]: r["status"] for r in meeting["registrants"]}
    assert states.pop("buiten@example.com") == "denied" and states.pop("pagina@example.com") == "denied"
    assert set(states.values()) == {"approved"} and len(states) == 5
    assert {r.email: r.join_url for r in registrations()} == approved(zoom, mid)
    assert sorted(seat_mails(app).values()) == [1] * 5  # the three whose add failed were mailed now
    note = fresh(Seminar, seminar.id).platform_error
    assert note.startswith("Reconciled with zoom") and "4 of 4" in note and "denied" in note

    work(now=later(26))
    assert len(jobs("video.reconcile")) == 1  # at most once per 24 h
    work(now=later(50))
    assert len(jobs("video.reconcile")) == 2


# ---------------------------------------------------------------- privacy and settings

def test_the_privacy_purge_deletes_the_registrant_at_zoom(app, zoom, make_seminar):
    seminar = make_seminar(start_at=future(days=2))
    work()
    [reg_id] = confirm_many(seminar, 1)
    work()
    rid, mid = fresh(Registration, reg_id).platform_registrant_id, meeting_id(seminar)
    assert len(zoom.registrants_of(mid)) == 1
    past_retention = seminar.start_at + timedelta(days=200)
    work(now=past_retention)  # the worker runs the purge, then the platform job it queued
    assert fresh(Registration, reg_id).status == "purged"
    # Not merely cancelled (Zoom would keep name and address): the record is gone.
    assert zoom.registrants_of(mid) == []
    assert [c.path for c in calls(zoom, "DELETE")] == [f"/v2/meetings/{mid}/registrants/{rid}"]


def test_an_unknown_provider_setting_is_flagged_not_lost(app, make_seminar):
    app.config["VIDEO_PROVIDER"] = "skype"
    seminar = make_seminar()
    work()
    [job] = jobs("video.create_meeting")
    assert job.state == "pending" and "unknown VIDEO_PROVIDER" in fresh(Seminar, seminar.id).platform_error


def test_a_meeting_that_could_not_be_made_is_tried_again_next_day(app, zoom, make_seminar):
    app.config["WORKER_MAX_ATTEMPTS"] = 1
    zoom.fail_next(1, status=503, path_contains="/users/me/meetings")
    seminar = make_seminar()
    confirm_many(seminar, 1)
    work()
    assert [j.state for j in jobs("video.create_meeting")] == ["failed"]
    work()
    assert len(jobs("video.create_meeting")) == 1  # the organisers see the failure; a day passes
    work(now=later(25))
    assert meeting_id(seminar) in zoom.meetings and all(r.join_url for r in registrations())


def test_a_link_to_a_meeting_made_anew_meanwhile_is_not_stored(app, zoom, make_seminar):
    """What a call achieved is recorded after the next call: if the meeting was made anew in
    between, the link to the old one is dropped (the attendee's own job adds them to the new one)."""
    from seminar.database import write_transaction
    from seminar.video.base import AttendeeLink
    from seminar.video.attendees import lock_registrations, store_link

    seminar = make_seminar()
    work()
    [reg_id] = confirm_many(seminar, 1)
    with write_transaction():
        store_link(lock_registrations([reg_id])[reg_id], AttendeeLink(join_url="https://zoom.example/w/old", registrant_id="r1"),
                    "seat_confirmed", "an-older-meeting")
    assert fresh(Registration, reg_id).join_url is None
    work()
    assert fresh(Registration, reg_id).join_url in approved(zoom, meeting_id(seminar)).values()


def test_a_host_starts_the_meeting_with_a_fresh_start_link(app, client, zoom, make_seminar):
    """Zoom's start_url expires after about two hours: the portal's "start the meeting" asks Zoom
    for the current one each time, and says so plainly when Zoom cannot answer."""
    from .portal_helpers import Staff, make_user

    make_user("host@bmk.example", role="host")
    seminar = make_seminar(hosts=["host@bmk.example"])
    work()
    stored = fresh(Seminar, seminar.id).meeting_host_url
    host = Staff(client, "host@bmk.example").logged_in()
    page = host.text(f"/manage/seminars/{seminar.id}")
    assert f"/manage/seminars/{seminar.id}/start" in page and stored not in page

    # Hours later Zoom hands out a new start link; the one stored at creation has expired.
    current = f"https://us06web.zoom.us/s/{meeting_id(seminar)}?zak=fresh-from-zoom"
    zoom.meetings[meeting_id(seminar)]["start_url"] = current
    before = len(calls(zoom, "GET", f"/meetings/{meeting_id(seminar)}"))
    started = host.get(f"/manage/seminars/{seminar.id}/start")
    assert started.status_code == 303 and started.headers["Location"] == current != stored
    assert len(calls(zoom, "GET", f"/meetings/{meeting_id(seminar)}")) == before + 1

    zoom.fail_next(1, status=503, path_contains=f"/meetings/{meeting_id(seminar)}", method="GET")
    failed = host.get(f"/manage/seminars/{seminar.id}/start")
    assert failed.status_code == 303 and failed.headers["Location"].endswith(f"/manage/seminars/{seminar.id}")
    assert "platform" in host.text(f"/manage/seminars/{seminar.id}")
