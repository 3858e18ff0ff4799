"""Mail through a real SMTP server (aiosmtpd on loopback) and calendar invites as clients read them:
parsed by `icalendar` and by ical.js (Thunderbird's parser)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest

from seminar.extensions import db
from seminar.models import Job, Registration
from seminar.programme.service import cancel_seminar, update_seminar

from .helpers import Person, links_in, text_of, work
from .icaljs import parse_with_icaljs

AMS = ZoneInfo("Europe/Amsterdam")


def confirmed_attendee(client, smtp, seminar, **person):
    """Sign up and confirm through the site; returns the Person and the seat mail."""
    someone = Person(client, **person)
    someone.sign_up(seminar)
    work()
    confirm_mail = smtp.recorder.to(someone.data["email"])[-1]
    someone.press_button(links_in(confirm_mail)["confirm"])
    work()
    return someone, smtp.recorder.to(someone.data["email"])[-1]


def calendar_part(msg):
    """The text/calendar alternative (not the attachment)."""
    body = next(p for p in msg.walk() if p.get_content_type() == "multipart/alternative")
    parts = body.get_payload()
    return parts[-1]


def invite_of(msg):
    part = calendar_part(msg)
    assert part.get_content_type() == "text/calendar"
    return part, part.get_content()


@pytest.fixture
def app(smtp_app):
    """Every test here sends through the real SMTP server."""
    return smtp_app


@pytest.fixture
def seminar(make_seminar):
    return make_seminar(title="Trauma-sensitief werken en opvoeden", capacity=5)


def test_headers_and_alternatives(client, smtp, seminar):
    person = Person(client, name="Zoë Ĳsselmeer-Dijkstra", email="zoe+seminar@kinderopvang.example")
    person.sign_up(seminar)
    work()
    [msg] = smtp.messages
    assert msg.envelope_to == ["zoe+seminar@kinderopvang.example"]
    assert msg["Message-ID"].endswith("@bmk.example>")
    assert msg["Date"] and msg["Reply-To"] == "seminars@bmk.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["To"].addresses[0].display_name == "Zoë Ĳsselmeer-Dijkstra"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] != "base64" for p in msg.get_payload())
    text = text_of(msg)
    assert "Beste Zoë Ĳsselmeer-Dijkstra," in text
    assert "Bevestig mijn aanmelding" in text
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert 'lang="nl"' in html and "Zoë" in html


def test_english_when_the_attendee_chose_english(client, smtp, seminar):
    client.get("/?lang=en")
    Person(client).sign_up(seminar)
    work()
    [msg] = smtp.messages
    assert msg["Subject"].startswith("Please confirm your sign-up")
    assert "Hello Anouk de Vries," in text_of(msg)


def test_seat_mail_carries_a_request_invite_that_clients_read(client, smtp, seminar):
    person, msg = confirmed_attendee(client, smtp, seminar)
    assert "bevestigd" in msg["Subject"]
    part, ics = invite_of(msg)
    # The part's method equals the METHOD line; the part is readable text, not base64.
    assert part.get_param("method") == "REQUEST"
    assert part.get_content_charset() == "utf-8"
    assert part["Content-Transfer-Encoding"] != "base64"
    attachment = next(p for p in msg.iter_attachments())
    assert attachment.get_filename().endswith(".ics")
    assert attachment.get_content() == ics.encode()

    cal = icalendar.Calendar.from_ical(ics)
    assert str(cal["METHOD"]) == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert event.decoded("DTSTART") == seminar.start_at
    assert event.decoded("DTEND") == seminar.start_at + timedelta(minutes=90)
    assert str(event["ORGANIZER"]) == "mailto:seminars@bmk.example"
    assert str(event["ATTENDEE"]) == "mailto:anouk@kinderopvang.example"
    assert int(event["SEQUENCE"]) == 0
    join = links_in(msg)["join"]
    assert str(event["LOCATION"]) == join and str(event["URL"]) == join

    parsed = parse_with_icaljs(ics)
    assert parsed["method"] == "REQUEST"
    [ev] = parsed["events"]
    assert ev["start_utc"] == seminar.start_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ev["attendees"][0]["value"] == "mailto:anouk@kinderopvang.example"
    assert ev["organizer"]["value"] == "mailto:seminars@bmk.example"


@pytest.mark.parametrize("local_start", [
    datetime(2027, 3, 26, 10, 0, tzinfo=AMS),   # winter time, the Friday before the change
    datetime(2027, 4, 2, 10, 0, tzinfo=AMS),    # summer time, the Friday after it
    datetime(2027, 10, 29, 10, 0, tzinfo=AMS),  # summer time, before the change back
    datetime(2027, 11, 5, 10, 0, tzinfo=AMS),   # winter time again
])
def test_update_and_cancel_keep_uid_and_raise_sequence_across_dst(client, smtp, make_seminar, local_start):
    start = local_start.astimezone(timezone.utc)
    seminar = make_seminar(title="De Meldcode in de praktijk", start_at=start, capacity=3)
    person, seat_mail = confirmed_attendee(client, smtp, seminar)
    expected_utc = {
        (3, 26): "09:00", (4, 2): "08:00", (10, 29): "08:00", (11, 5): "09:00",
    }[(local_start.month, local_start.day)]

    def check(msg, method, sequence, status, moved_by=timedelta(0)):
        part, ics = invite_of(msg)
        assert part.get_param("method") == method
        ev = parse_with_icaljs(ics)["events"][0]
        py = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]
        assert parse_with_icaljs(ics)["method"] == method
        assert ev["sequence"] == int(py["SEQUENCE"]) == sequence
        assert ev["status"] == status
        assert ev["start_utc"] == (start + moved_by).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert ev["end_utc"] == (start + moved_by + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert py.decoded("DTSTART") == start + moved_by
        assert py.decoded("DTEND") == start + moved_by + timedelta(minutes=90)
        assert ev["organizer"]["value"] == "mailto:seminars@bmk.example"
        assert ev["attendees"][0]["value"] == "mailto:anouk@kinderopvang.example"
        return ev["uid"]

    uid = check(seat_mail, "REQUEST", 0, "CONFIRMED")
    assert parse_with_icaljs(invite_of(seat_mail)[1])["events"][0]["start_utc"][11:16] == expected_utc

    update_seminar(seminar.id, start_at=start + timedelta(days=7))
    work()
    changed = smtp.recorder.to("anouk@kinderopvang.example")[-1]
    assert changed["Subject"].startswith("Gewijzigd")
    assert check(changed, "REQUEST", 1, "CONFIRMED", timedelta(days=7)) == uid

    cancel_seminar(seminar.id)
    work()
    cancelled = smtp.recorder.to("anouk@kinderopvang.example")[-1]
    assert cancelled["Subject"].startswith("Geannuleerd")
    assert check(cancelled, "CANCEL", 2, "CANCELLED", timedelta(days=7)) == uid


def test_own_cancellation_sends_cancel_to_that_person_only(client, smtp, seminar):
    anouk, seat = confirmed_attendee(client, smtp, seminar)
    bram, _ = confirmed_attendee(client, smtp, seminar, name="Bram Jansen", email="bram@bso.example")
    before = len(smtp.recorder.to("bram@bso.example"))
    anouk.press_button(links_in(seat)["manage"])
    work()
    last = smtp.recorder.to("anouk@kinderopvang.example")[-1]
    part, ics = invite_of(last)
    assert part.get_param("method") == "CANCEL"
    event = parse_with_icaljs(ics)["events"][0]
    assert event["status"] == "CANCELLED" and event["sequence"] == 1
    assert len(smtp.recorder.to("bram@bso.example")) == before


def test_reminders_go_out_24h_and_1h_before_and_follow_a_reschedule(client, smtp, seminar):
    person, seat = confirmed_attendee(client, smtp, seminar)
    sent_before = len(smtp.messages)
    work(now=seminar.start_at - timedelta(hours=25))
    assert len(smtp.messages) == sent_before  # nothing due yet

    new_start = seminar.start_at + timedelta(days=2)
    update_seminar(seminar.id, start_at=new_start)
    work()  # the calendar update
    assert smtp.messages[-1]["Subject"].startswith("Gewijzigd")
    count = len(smtp.messages)
    work(now=new_start - timedelta(hours=24) - timedelta(minutes=1))
    assert len(smtp.messages) == count  # the old reminder moved with the seminar
    work(now=new_start - timedelta(hours=24))
    assert "24 uur" in smtp.messages[-1]["Subject"]
    work(now=new_start - timedelta(hours=1))
    assert "1 uur" in smtp.messages[-1]["Subject"]
    # Links are minted per mail (they carry their signing time): both lead to the same seat.
    reminder_join = person.follow(links_in(smtp.messages[-1])["join"]).headers["Location"]
    assert reminder_join == person.follow(links_in(seat)["join"]).headers["Location"]
    assert len(smtp.messages) == count + 2


def test_very_long_title_and_dutch_characters_survive(client, smtp, make_seminar):
    title = "Ĳzersterk signaleren: " + "naïeve aannames en één gesprek " * 6
    seminar = make_seminar(title=title.strip()[:200], capacity=2)
    person, seat = confirmed_attendee(client, smtp, seminar, name="Eloïse van Ĳssel")
    assert seminar.title in seat["Subject"]
    _, ics = invite_of(seat)
    assert parse_with_icaljs(ics)["events"][0]["summary"] == seminar.title
    assert icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]["SUMMARY"] == seminar.title


def test_permanent_refusal_is_marked_failed_and_not_retried(client, smtp, seminar):
    smtp.recorder.refuse.add("gone@kinderopvang.example")
    Person(client, email="gone@kinderopvang.example").sign_up(seminar)
    work()
    job = db.session.scalar(db.select(Job).where(Job.kind == "mail.confirm_address"))
    assert job.state == "failed" and "550" in job.last_error and job.attempts == 1
    work(now=datetime.now(timezone.utc) + timedelta(days=1))
    db.session.refresh(job)
    assert job.attempts == 1 and smtp.messages == []


def test_public_ics_has_no_personal_link(client, seminar):
    response = client.get(f"/seminars/{seminar.slug}.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    parsed = parse_with_icaljs(response.data)
    assert parsed["method"] == "PUBLISH"
    [ev] = parsed["events"]
    assert ev["attendees"] == [] and "/r/" not in (ev["description"] or "") + (ev["url"] or "")
    assert ev["start_utc"] == seminar.start_at.strftime("%Y-%m-%dT%H:%M:%SZ")
