"""Calendar invites (iTIP, RFC 5546) and the public .ics of a seminar.

Times are written in UTC ("…Z"): every client (Outlook, Gmail, Apple Calendar, Thunderbird) reads
UTC the same way and shows it in the reader's own zone, across daylight-saving changes. That
sidesteps VTIMEZONE blocks altogether (Thunderbird's parser misreads the RDATE-list VTIMEZONE that
`icalendar` generates by default).
"""
from __future__ import annotations

from email.utils import parseaddr

from flask import current_app
from icalendar import Calendar, Event, vCalAddress, vText

from .models import Registration, Seminar
from .timeutil import utcnow

PRODID = "-//BMK//Seminaraanmeldingen//NL"


def sender_domain() -> str:
    address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
    return address.rpartition("@")[2] or "localhost"


def organiser_address() -> tuple[str, str]:
    name, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    return name or current_app.config["ORGANISATION_NAME"], address


def _calendar(method: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    return cal


def _event(seminar: Seminar, uid: str, sequence: int, description: str) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", utcnow())
    event.add("dtstart", seminar.start_at)
    event.add("dtend", seminar.end_at)
    event.add("sequence", sequence)
    event.add("summary", seminar.title)
    event.add("description", description)
    event.add("transp", "OPAQUE")
    name, address = organiser_address()
    organizer = vCalAddress(f"mailto:{address}")
    organizer.params["cn"] = vText(name)
    event.add("organizer", organizer)
    return event


def invite(registration: Registration, method: str, sequence: int, join_link: str | None,
           description: str) -> bytes:
    """A REQUEST (new or changed) or CANCEL for one attendee, with their personal join link."""
    assert method in ("REQUEST", "CANCEL")
    seminar = registration.seminar
    cal = _calendar(method)
    event = _event(seminar, f"{registration.ical_uid}@{sender_domain()}", sequence, description)
    attendee = vCalAddress(f"mailto:{registration.email}")
    attendee.params["cn"] = vText(registration.name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    # They signed up themselves: the seat is accepted, and no reply is expected from them.
    attendee.params["partstat"] = vText("ACCEPTED")
    attendee.params["rsvp"] = vText("FALSE")
    event.add("attendee", attendee)
    if method == "CANCEL" or seminar.is_cancelled:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    if join_link and method == "REQUEST":
        event.add("location", join_link)
        event.add("url", join_link)
    cal.add_component(event)
    return cal.to_ical()


def public_calendar(seminar: Seminar, page_url: str, description: str) -> bytes:
    """METHOD:PUBLISH for anyone who wants the seminar in their calendar: no personal link."""
    cal = _calendar("PUBLISH")
    event = _event(seminar, f"seminar-{seminar.id}@{sender_domain()}", seminar.ical_sequence, description)
    event.add("url", page_url)
    event.add("status", "CANCELLED" if seminar.is_cancelled else "CONFIRMED")
    cal.add_component(event)
    return cal.to_ical()
