"""The programme as feeds: an iCalendar feed (subscribable as webcal://) and an Atom feed.

Both list every seminar that is published and not over yet; a cancelled one stays in them, marked
cancelled (STATUS:CANCELLED), until it would have ended, so a calendar that subscribed learns of
the cancellation instead of silently losing the event. UIDs are the seminar's public UID (the same
as in /seminars/<slug>.ics) and SEQUENCE is the seminar's, which rises with every change of time,
title or state.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

from flask import current_app
from flask_babel import gettext as _, ngettext
from sqlalchemy import select

from .. import calendar
from ..extensions import db
from ..models import Seminar, SeminarState
from ..templating import when
from ..timeutil import utcnow
from ..tokens import external_url

ATOM = "http://www.w3.org/2005/Atom"
REFRESH = timedelta(hours=6)


def programme(now: datetime | None = None, include_cancelled: bool = True) -> list[Seminar]:
    """Published seminars that have not ended, soonest first; with `include_cancelled` also the
    cancelled ones that have not reached their end yet."""
    now = now or utcnow()
    states = [SeminarState.PUBLISHED] + ([SeminarState.CANCELLED] if include_cancelled else [])
    # A seminar lasts at most a day (programme.service._check): anything starting earlier is over.
    candidates = db.session.scalars(
        select(Seminar).where(Seminar.state.in_(states), Seminar.start_at > now - timedelta(days=1))
        .order_by(Seminar.start_at, Seminar.id))
    return [seminar for seminar in candidates if seminar.end_at > now]


def page_url(seminar: Seminar) -> str:
    return external_url("public.seminar_page", slug=seminar.slug)


def _description(seminar: Seminar) -> str:
    url = page_url(seminar)
    if seminar.is_cancelled:
        return _("This seminar has been cancelled.")
    return _("More information and sign-up: %(url)s", url=url)


def programme_ics(now: datetime | None = None) -> bytes:
    events = [calendar.public_event(seminar, page_url(seminar), _description(seminar),
                                    stamp=seminar.updated_at)
              for seminar in programme(now)]
    name = current_app.config["ORGANISATION_NAME"]
    return calendar.publish_calendar(events, {
        "x-wr-calname": _("Seminars for attention officers") + f" · {name}",
        # How often a subscribed calendar should look again: RFC 7986, and Outlook's own name.
        "refresh-interval": (REFRESH, {"VALUE": "DURATION"}),
        "x-published-ttl": "PT6H",
    })


def webcal_url() -> str:
    """The feed's address for calendar apps (webcal:// is http(s):// for 'subscribe')."""
    url = external_url("reach.programme_ics")
    return "webcal://" + url.split("://", 1)[1]


def _tag(seminar: Seminar) -> str:
    # A tag URI (RFC 4151): stable for the seminar's whole life, whatever its title or address.
    return f"tag:{calendar.sender_domain()},{seminar.created_at:%Y-%m-%d}:seminar-{seminar.id}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def programme_atom(now: datetime | None = None) -> bytes:
    """An Atom 1.0 feed (RFC 4287) of the programme: one entry per seminar."""
    seminars = programme(now)
    feed = ET.Element("feed", {"xmlns": ATOM})
    name = current_app.config["ORGANISATION_NAME"]
    ET.SubElement(feed, "id").text = f"tag:{calendar.sender_domain()},2024:programme"
    ET.SubElement(feed, "title").text = _("Seminars for attention officers") + f" · {name}"
    updated = max((s.updated_at for s in seminars), default=None) or now or utcnow()
    ET.SubElement(feed, "updated").text = _iso(updated)
    ET.SubElement(ET.SubElement(feed, "author"), "name").text = name
    ET.SubElement(feed, "link", {"rel": "self", "type": "application/atom+xml",
                                 "href": external_url("reach.programme_atom")})
    ET.SubElement(feed, "link", {"rel": "alternate", "type": "text/html",
                                 "href": external_url("public.index")})
    for seminar in seminars:
        entry = ET.SubElement(feed, "entry")
        ET.SubElement(entry, "id").text = _tag(seminar)
        title = seminar.title if not seminar.is_cancelled else _("Cancelled: %(title)s", title=seminar.title)
        ET.SubElement(entry, "title").text = title
        ET.SubElement(entry, "updated").text = _iso(seminar.updated_at)
        ET.SubElement(entry, "published").text = _iso(seminar.created_at)
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html", "href": page_url(seminar)})
        summary = [when(seminar)]
        if seminar.is_cancelled:
            summary.append(_("This seminar has been cancelled."))
        elif seminar.seats_left:
            summary.append(ngettext("%(num)d seat left", "%(num)d seats left", seminar.seats_left))
        else:
            summary.append(_("Full: you can join the waitlist"))
        ET.SubElement(entry, "summary").text = " · ".join(summary)
        if seminar.description:
            ET.SubElement(entry, "content", {"type": "text"}).text = seminar.description
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
