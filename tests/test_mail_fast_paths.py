"""The fast ways of making a mail give the very bytes of the ordinary ways: invites spliced from a
shared part (calendar.invite vs build_invite), text and HTML put together from a rendered shape
(notify.rendering vs the templates), header lines written without the email package's parser
(notify.fastmime) — for awkward names, addresses and links, in both languages."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta, timezone

import icalendar
import pytest
from flask_babel import force_locale

from seminar import calendar
from seminar.extensions import db
from seminar.models import Registration
from seminar.notify import fastmime, rendering
from seminar.notify.mails import build_message, compose
from seminar.jobs import kinds
from seminar.registration.service import SignUpData, confirm, sign_up

from .icaljs import parse_with_icaljs

NAMES = [
    "Anouk de Vries",
    "Jan-Willem O'Brien",
    'Karin "Kaatje" Smit',
    "Zoë Ünal-Çelik",
    "A; B, C: D\\E",
    "<b>Ingrid</b> & Co",
    "http://example.org/x?a=1&b=2",
    "iemand@example.org",
    "www.example.com",
    "Maximiliaan " * 9,
    "名前 テスト" * 5,
    "tab\there",
]
LINKS = [
    "http://seminar.test/r/join/eyJyIjoxfQ.aSZ1Ng.0123456789abcdefghijklmnopqrstuvwxyz_-",
    "https://seminar.test/r/join/" + "x" * 70 + "^\\",
    None,
]


@pytest.fixture
def attendees(app, make_seminar):
    """Registrations with awkward names and addresses, confirmed, in Dutch and English."""
    seminar = make_seminar(title="Meldcode; kindcheck, \"signalen\" & meer: een lange titel " * 2, capacity=50)
    regs = []
    for i, name in enumerate(NAMES):
        address = f"persoon.{i}+tag@kinderopvang.example" if i % 3 else f"p{i}@kinderopvang.example"
        reg = sign_up(seminar.id, SignUpData(name=name, email=address, organisation="KDV",
                                             location_type="kdv", language="en" if i % 2 else "nl"))
        confirm(reg.id)
        regs.append(db.session.get(Registration, reg.id))
    return regs


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_spliced_invites_are_the_whole_build_byte_for_byte(attendees, method):
    stamp = datetime.now(timezone.utc)
    for sequence in (0, 7, 123456):
        for link in LINKS:
            for reg in attendees:
                description = f"Persoonlijke link: {link}" if link else "Deze registratie is geannuleerd. " * 4
                fast = calendar.invite(reg, method, sequence, link, description, stamp)
                assert fast == calendar.build_invite(reg, method, sequence, link, description, stamp)
    assert calendar._shared and all(s.verified and not s.broken for s in calendar._shared.values())


def test_spliced_invite_reads_the_same_in_icalendar_and_icaljs(attendees):
    reg = attendees[3]  # non-ASCII name
    link = LINKS[1]
    ics = calendar.invite(reg, "REQUEST", 5, link, f"Personal join link: {link}")
    [event] = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    assert str(event["ATTENDEE"]) == f"mailto:{reg.email}"
    assert str(event["ATTENDEE"].params["CN"]) == reg.name
    assert str(event["URL"]) == link and int(event["SEQUENCE"]) == 5
    assert event.decoded("DTSTART") == reg.seminar.start_at
    parsed = parse_with_icaljs(ics)
    [ev] = parsed["events"]
    assert ev["attendees"][0]["value"] == f"mailto:{reg.email}"


def test_invites_follow_a_change_of_the_seminar(attendees):
    reg = attendees[0]
    before = calendar.invite(reg, "REQUEST", 1, LINKS[0], "x")
    reg.seminar.start_at = reg.seminar.start_at + timedelta(days=1)
    after = calendar.invite(reg, "REQUEST", 2, LINKS[0], "x")
    stamp = datetime.now(timezone.utc)
    assert before != after
    assert calendar.invite(reg, "REQUEST", 2, LINKS[0], "x", stamp) == \
        calendar.build_invite(reg, "REQUEST", 2, LINKS[0], "x", stamp)
    db.session.rollback()


def test_rendered_shapes_are_the_templates_output(attendees):
    for reg in attendees:
        for kind in ("seminar_changed", "confirm_address", "already_registered", "reminder"):
            extra = {"hours": 24} if kind == "reminder" else {}  # what the reminder says when it has none
            job = kinds.get(f"mail.{kind}").enqueue(registration=reg, calendar="REQUEST" if kind == "seminar_changed" else None,
                                                    **extra)
            db.session.flush()
            composed = compose(job)
            if composed is None:
                continue
            with force_locale(reg.language):
                assert composed.rendered == rendering.ordinary(composed, reg.language)
    db.session.rollback()
    assert rendering._shapes and all(s is not None and s.verified for s in rendering._shapes.values())


def test_rendering_puts_markup_in_escaped_and_links_urlized(attendees):
    reg = attendees[5]  # "<b>Ingrid</b> & Co"
    job = kinds.SEMINAR_CHANGED.enqueue(registration=reg, calendar="REQUEST")
    db.session.flush()
    text, html = compose(job).rendered
    assert "<b>Ingrid</b> & Co" in text
    assert "&lt;b&gt;Ingrid&lt;/b&gt; &amp; Co" in html and "<b>Ingrid" not in html
    assert '<a href="http://seminar.test/r/join/' in html
    db.session.rollback()


def test_header_lines_written_directly_are_the_policys(app):
    values = {
        "To": ["Anouk de Vries <anouk@kinderopvang.example>", "anouk@kinderopvang.example",
               "Jan-Willem O'Brien <j.w+tag@x-y.example>", "A B C D E F G H I J K L M N O P <a@b.example>"],
        "Date": [email.utils.formatdate(t, localtime=False) for t in (0, 10**9, 2 * 10**9, 1_767_225_599)],
        "Message-ID": [email.utils.make_msgid(idstring=f"job{n}", domain="bmk.example") for n in (1, 99, 10**9)],
    }
    for name, lines in values.items():
        for value in lines:
            assert fastmime._fold(name, value) == fastmime.policy_fold(name, value)
            assert fastmime.PLAIN[name].match(value), value  # these take the direct way
    for value in ['"Kaatje, Smit" <k@x.example>', "Zoë <z@x.example>", "X " * 40 + "<x@x.example>",
                  # Names that look like encoded words (a person may type them): the policy decodes them.
                  "=?utf-8?q?Hi?= <h@x.example>", "=?iso-8859-1?q?J=F6rg?= <j@x.example>"]:
        assert fastmime._fold("To", value) == fastmime.policy_fold("To", value)


def test_fast_messages_are_the_email_packages(attendees):
    for reg in attendees:
        job = kinds.SEMINAR_CHANGED.enqueue(registration=reg, calendar="REQUEST")
        db.session.flush()
        composed = compose(job)
        fast = fastmime.message_bytes(composed, *composed.to, job.id)
        if fast is None:  # e.g. an address the fast way does not take
            continue
        data, _ = fast
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        expected = build_message(composed, *composed.to, job.id, date=parsed["Date"], message_id=parsed["Message-ID"])
        skeleton = fastmime._skeletons[fastmime._key(composed)]
        for part, boundary in zip([p for p in expected.walk() if p.is_multipart()], skeleton.boundaries):
            part.set_boundary(boundary)
        assert data.decode("ascii") == fastmime._flatten(expected)
    db.session.rollback()


def test_personal_invite_lines_written_directly_are_icalendars(app):
    """The attendee's own lines of an invite, written from the values, against icalendar's Event."""
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    names = NAMES + ['^caret^ "quoted"', "a:b;c,d", "line\nbreak", "back\\slash", "O'Neil", "NoSpaces", "x" * 80]
    addresses = ["p@kinderopvang.example", "persoon.1+tag@kinderopvang.example", "zoë@voorbeeld.example"]
    descriptions = ["Persoonlijke link: " + (LINKS[0] or ""), "a;b,c\\d\nnext\r\nline\rend", "\\N",
                    "Deze registratie is geannuleerd. " * 4, "Ünïcödé — " * 12]
    stamps = [datetime(2026, 3, 29, 1, 2, 3, 456789, tzinfo=timezone.utc),
              datetime(2026, 3, 29, 3, 2, 3, tzinfo=ZoneInfo("Europe/Amsterdam"))]
    for i, name in enumerate(names):
        reg = SimpleNamespace(name=name, email=addresses[i % len(addresses)], ical_uid=f"reg-{i},x;y")
        for link in LINKS:
            for method in ("REQUEST", "CANCEL"):
                for description in descriptions:
                    for stamp in stamps:
                        args = (reg, method, 123 * i, link, description, stamp)
                        assert calendar._personal_lines(*args) == calendar._personal_lines_icalendar(*args), args


QP_SAMPLES = [
    "", "\n", "a", "a\n", "a\n\nb", "\r", "x\r\ny\rz\n", "tab\tend\t", "space end ", "=" * 200,
    "é" * 100, "Zoë Ünal-Çelik, … “quotes” \x85\x0b\x0c\x1c\x1d\x1e\u2028 end",
    *("y" * n + " " for n in range(70, 80)), *("y" * n + "=" for n in range(70, 80)),
    *("y" * n + "é" for n in range(70, 80)), *("y" * n for n in range(72, 80)),
    "<p style=\"margin:0 0 14px;word-break:break-word;overflow-wrap:anywhere;\">Hallo Anouk,</p>\n" * 3,
]


def test_quoted_printable_line_by_line_is_the_email_packages():
    from email.message import EmailMessage

    fastmime.forget()
    for sample in QP_SAMPLES + ["\n".join(QP_SAMPLES), "\r\n".join(QP_SAMPLES) + "\r\n"]:
        msg = EmailMessage()
        msg.set_content(sample, cte="quoted-printable")
        expected = fastmime._crlf(msg.get_payload())
        assert fastmime._qp(sample) == expected, sample
        assert fastmime._qp(sample) == expected, sample  # the second time from the lines kept
    fastmime.forget()
    assert not fastmime._qp_lines


def test_base64_lines_are_the_email_packages():
    from email.message import EmailMessage

    for data in (b"", b"x", b"BEGIN:VCALENDAR\r\n" * 100, bytes(range(256)) * 3):
        msg = EmailMessage()
        msg.set_content(data, maintype="application", subtype="ics")
        assert fastmime._base64(data) == msg.get_payload()


def test_messages_looked_up_once_per_language_are_flask_babels(app):
    from flask_babel import gettext, ngettext

    from seminar.notify import mails

    seen = {}
    for lang in ("nl", "en", "nl"):
        with force_locale(lang):
            expected = [gettext("Hello %(name)s,", name="Anouk"), gettext("Seminar"),
                        gettext("Join with your personal link: %(link)s", link="https://x.example/%s"),
                        *(ngettext("Reminder: %(title)s starts in %(num)d hour",
                                   "Reminder: %(title)s starts in %(num)d hours", n, title="T") for n in (1, 2, 24))]
        for _ in range(2):  # the second time from the messages kept
            with mails.in_language(lang):
                assert mails.language() == lang
                assert [mails._("Hello %(name)s,", name="Anouk"), mails._("Seminar"),
                        mails._("Join with your personal link: %(link)s", link="https://x.example/%s"),
                        *(mails.ngettext("Reminder: %(title)s starts in %(num)d hour",
                                         "Reminder: %(title)s starts in %(num)d hours", n, title="T")
                          for n in (1, 2, 24))] == expected
        seen[lang] = expected
    assert seen["en"][0] == "Hello Anouk," and seen["en"][-1] == "Reminder: T starts in 24 hours"
    assert seen["nl"][0] != seen["en"][0]
