"""Calendar invites (iTIP, RFC 5546) and the public .ics of a seminar.

Times are written in UTC ("…Z"): every client (Outlook, Gmail, Apple Calendar, Thunderbird) reads
UTC the same way and shows it in the reader's own zone, across daylight-saving changes. That
sidesteps VTIMEZONE blocks altogether (Thunderbird's parser misreads the RDATE-list VTIMEZONE that
`icalendar` generates by default).

A fan-out (a seminar moved: one update per attendee) sends hundreds of invites that differ only in
the attendee's own lines. `invite` therefore builds the lines every attendee shares once per seminar
state (with `icalendar`, as always) and writes only the attendee's own lines per invite, each value
escaped by `icalendar`'s own function for its type, checked byte for byte against a whole build
once per shared part.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from email.utils import parseaddr
from functools import lru_cache

from flask import current_app
from icalendar import Calendar, Event, vCalAddress, vText, vUri
from icalendar.parser import Contentline, Parameters, param_value

from .models import Registration, Seminar
from .timeutil import utcnow

log = logging.getLogger(__name__)

PRODID = "-//BMK//Seminaraanmeldingen//NL"
# The properties that are each attendee's own; everything else in an invite is the seminar's.
PERSONAL = ("DTSTAMP", "UID", "SEQUENCE", "ATTENDEE", "DESCRIPTION", "LOCATION", "URL")


@lru_cache(maxsize=8)
def _parsed_sender(sender: str) -> tuple[str, str]:
    return parseaddr(sender)


def sender_domain() -> str:
    address = _parsed_sender(current_app.config["MAIL_DEFAULT_SENDER"])[1]
    return address.rpartition("@")[2] or "localhost"


def organiser_address() -> tuple[str, str]:
    name, address = _parsed_sender(current_app.config["MAIL_DEFAULT_SENDER"])
    return name or current_app.config["ORGANISATION_NAME"], address


def _calendar(method: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    return cal


def _event(seminar: Seminar, uid: str, sequence: int, description: str,
           stamp: datetime | None = None) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp or utcnow())
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


def _attendee(registration: Registration) -> vCalAddress:
    attendee = vCalAddress(f"mailto:{registration.email}")
    attendee.params["cn"] = vText(registration.name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    # They signed up themselves: the seat is accepted, and no reply is expected from them.
    attendee.params["partstat"] = vText("ACCEPTED")
    attendee.params["rsvp"] = vText("FALSE")
    return attendee


def _invite_calendar(registration, method: str, sequence: int, join_link: str | None,
                     description: str, stamp: datetime | None = None) -> Calendar:
    assert method in ("REQUEST", "CANCEL")
    seminar = registration.seminar
    cal = _calendar(method)
    event = _event(seminar, f"{registration.ical_uid}@{sender_domain()}", sequence, description, stamp)
    event.add("attendee", _attendee(registration))
    if method == "CANCEL" or seminar.is_cancelled:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    if join_link and method == "REQUEST":
        event.add("location", join_link)
        event.add("url", join_link)
    cal.add_component(event)
    return cal


def build_invite(registration: Registration, method: str, sequence: int, join_link: str | None,
                 description: str, stamp: datetime | None = None) -> bytes:
    """The invite built whole with `icalendar` (what `invite` returns, the slow way)."""
    return _invite_calendar(registration, method, sequence, join_link, description, stamp).to_ical()


def _personal_lines(registration: Registration, method: str, sequence: int, join_link: str | None,
                    description: str, stamp: datetime) -> dict[str, bytes]:
    """The attendee's own content lines, as a whole build writes them.

    Written here from the values, each escaped by icalendar's own functions for its type (text,
    a parameter, an address, a URI) as `Event.add` and `content_line` would; a stamp that is not
    UTC takes icalendar's whole way (`_personal_lines_icalendar`). tests/test_mail_fast_paths.py
    holds both ways side by side."""
    if stamp.tzinfo is not timezone.utc:
        return _personal_lines_icalendar(registration, method, sequence, join_link, description, stamp)
    name = registration.name
    # Parameters.to_ical: CN is quoted when it holds one of its `quote_also` characters (" '").
    cn = param_value(name, always_quote=any(c in name for c in CN_QUOTE_ALSO))
    lines = {
        "UID": "UID:" + _text(f"{registration.ical_uid}@{sender_domain()}"),
        "DTSTAMP": f"DTSTAMP:{stamp.year:04}{stamp.month:02}{stamp.day:02}"
                   f"T{stamp.hour:02}{stamp.minute:02}{stamp.second:02}Z",
        "SEQUENCE": f"SEQUENCE:{int(sequence)}",
        "DESCRIPTION": "DESCRIPTION:" + _text(description),
        "ATTENDEE": f"ATTENDEE;CN={cn};PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT;RSVP=FALSE:"
                    + vCalAddress(f"mailto:{registration.email}").to_ical().decode("utf-8"),
    }
    if join_link and method == "REQUEST":
        lines["LOCATION"] = "LOCATION:" + _text(join_link)
        lines["URL"] = "URL:" + vUri(join_link).to_ical().decode("utf-8")
    return {line_name: _folded(Contentline(text)) for line_name, text in lines.items()}


CN_QUOTE_ALSO = Parameters.quote_also.get("CN", "")


def _text(value: str) -> str:
    return vText(value).to_ical().decode("utf-8")


def _personal_lines_icalendar(registration: Registration, method: str, sequence: int,
                              join_link: str | None, description: str, stamp: datetime) -> dict[str, bytes]:
    """The attendee's own content lines, each made (and folded) by icalendar as in a whole build."""
    event = Event()
    event.add("uid", f"{registration.ical_uid}@{sender_domain()}")
    event.add("dtstamp", stamp)
    event.add("sequence", sequence)
    event.add("description", description)
    event.add("attendee", _attendee(registration))
    if join_link and method == "REQUEST":
        event.add("location", join_link)
        event.add("url", join_link)
    return {name: _folded(event.content_line(name, event[name])) for name in event}


def _folded(line: Contentline) -> bytes:
    """`line.to_ical()` + CRLF. icalendar folds character by character (75 octets, never right after
    a backslash or caret); a line of plain ASCII without those folds every 74 characters, which is
    the same thing done at once."""
    if line.isascii() and "\\" not in line and "^" not in line:
        text = str(line)
        if len(text) < 75:
            return (text + "\r\n").encode("ascii")
        return ("\r\n ".join(text[i:i + 74] for i in range(0, len(text), 74)) + "\r\n").encode("ascii")
    return line.to_ical() + b"\r\n"


class _Probe:
    """Stands in for a registration while the shared part of an invite is built."""

    def __init__(self, seminar: Seminar):
        self.seminar, self.ical_uid, self.email, self.name = seminar, "probe", "probe@probe.invalid", "probe"


class _Shared:
    """An invite's lines in order: the seminar's as bytes, the attendee's as property names."""
    __slots__ = ("pieces", "verified", "broken")

    def __init__(self, pieces: list):
        self.pieces, self.verified, self.broken = pieces, False, False


_shared: "OrderedDict[tuple, _Shared]" = OrderedDict()
_shared_lock = threading.Lock()
MAX_SHARED = 32


def _shared_part(seminar: Seminar, method: str, with_link: bool) -> _Shared:
    name, address = organiser_address()
    key = (seminar.id, seminar.title, seminar.start_at, seminar.end_at, seminar.is_cancelled, method,
           with_link, name, address, sender_domain())
    with _shared_lock:  # a web process's threads share these too
        shared = _shared.get(key)
        if shared is not None:
            _shared.move_to_end(key)
            return shared
    cal = _invite_calendar(_Probe(seminar), method, 0, "probe:" if with_link else None, "probe")
    pieces: list = []
    for line_name, value in cal.property_items():
        if line_name in PERSONAL:
            pieces.append(line_name)
        else:
            line = cal.content_line(line_name, value).to_ical() + b"\r\n"
            if pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += line
            else:
                pieces.append(line)
    shared = _Shared(pieces)
    with _shared_lock:
        _shared[key] = shared
        while len(_shared) > MAX_SHARED:
            _shared.popitem(last=False)
    return shared


def invite(registration: Registration, method: str, sequence: int, join_link: str | None,
           description: str, stamp: datetime | None = None) -> bytes:
    """A REQUEST (new or changed) or CANCEL for one attendee, with their personal join link.

    The same bytes as `build_invite`: the seminar's lines come from a build shared by every
    attendee, the attendee's own lines are made per invite (see the module's docstring)."""
    assert method in ("REQUEST", "CANCEL")
    stamp = stamp or utcnow()
    shared = _shared_part(registration.seminar, method, bool(join_link) and method == "REQUEST")
    if shared.broken:
        return build_invite(registration, method, sequence, join_link, description, stamp)
    own = _personal_lines(registration, method, sequence, join_link, description, stamp)
    data = b"".join(piece if isinstance(piece, bytes) else own.pop(piece, b"") for piece in shared.pieces)
    if own or not shared.verified:
        whole = build_invite(registration, method, sequence, join_link, description, stamp)
        if own or data != whole:
            shared.broken = True
            log.warning("invite: spliced lines differ from a whole build; building invites whole")
            return whole
        shared.verified = True
    return data


def public_event(seminar: Seminar, page_url: str, description: str,
                 stamp: datetime | None = None) -> Event:
    """The seminar as anyone may see it (no personal link): one UID for its whole life, the
    SEQUENCE that rises with every change of time, title or state."""
    event = _event(seminar, f"seminar-{seminar.id}@{sender_domain()}", seminar.ical_sequence,
                   description, stamp)
    event.add("url", page_url)
    event.add("status", "CANCELLED" if seminar.is_cancelled else "CONFIRMED")
    return event


def publish_calendar(events: list[Event], properties: dict | None = None) -> bytes:
    """METHOD:PUBLISH with these events (and calendar properties such as X-WR-CALNAME)."""
    cal = _calendar("PUBLISH")
    for name, value in (properties or {}).items():
        # A (value, parameters) pair for a property that needs parameters (VALUE=DURATION).
        value, parameters = value if isinstance(value, tuple) else (value, None)
        cal.add(name, value, parameters=parameters)
    for event in events:
        cal.add_component(event)
    return cal.to_ical()


def public_calendar(seminar: Seminar, page_url: str, description: str) -> bytes:
    """METHOD:PUBLISH for anyone who wants the seminar in their calendar: no personal link."""
    return publish_calendar([public_event(seminar, page_url, description)])
