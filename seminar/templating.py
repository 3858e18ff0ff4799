"""Helpers that pages and mails share: times in TIMEZONE, status names, the language switch."""
from __future__ import annotations

import re

from flask import Flask, current_app, request, url_for
from flask_babel import format_date, format_time, get_locale, gettext as _, lazy_gettext
from markupsafe import Markup, escape

from .jobs import kinds
from .models import JobState, RegistrationStatus, Seminar

STATUS_LABELS = {
    RegistrationStatus.PENDING: lazy_gettext("waiting for your confirmation"),
    RegistrationStatus.CONFIRMED: lazy_gettext("seat confirmed"),
    RegistrationStatus.WAITLISTED: lazy_gettext("on the waitlist"),
    RegistrationStatus.CANCELLED: lazy_gettext("cancelled"),
    RegistrationStatus.LAPSED: lazy_gettext("lapsed (not confirmed in time)"),
    RegistrationStatus.PURGED: lazy_gettext("removed"),
}


def job_label(kind: str) -> str:
    """What an outbox entry is, in words (its kind's label, kinds.py)."""
    return kinds.label(kind)


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def when(seminar: Seminar) -> str:
    """'vrijdag 11 juni 2027, 10:00–11:30 (Nederlandse tijd)' in the current language."""
    zone = current_app.config["TIMEZONE"]
    label = _("Dutch time") if zone == "Europe/Amsterdam" else zone
    return _(
        "%(date)s, %(start)s–%(end)s (%(zone)s)",
        date=format_date(seminar.start_at, "full"),
        start=format_time(seminar.start_at, "HH:mm"),
        end=format_time(seminar.end_at, "HH:mm"),
        zone=label,
    )


def other_language_url() -> tuple[str, str, str]:
    """(url, label, lang) of the link that switches to the other language on the same page."""
    current = str(get_locale())
    target = "en" if current == "nl" else "nl"
    # The matched route and `lang` only: any other query parameter (`_external`, `_anchor`,
    # `_scheme`…) would steer url_for to another host or scheme.
    try:
        url = (url_for(request.endpoint, **(request.view_args or {}), lang=target)
               if request.endpoint and request.url_rule is not None else f"{request.path}?lang={target}")
    except Exception:  # an endpoint that cannot be rebuilt (errors): stay on the same path
        url = f"{request.path}?lang={target}"
    return url, ("English" if target == "en" else "Nederlands"), target


def own_links(text: str) -> Markup:
    """`text` escaped, with only this site's own links (BASE_URL…: the mailed tokens, the portal)
    made clickable. Never `urlize`: what a person typed (a name "Log in op https://…") must stay
    text in a mail sent from the association's address."""
    base = current_app.config["BASE_URL"]
    pattern = re.compile(re.escape(base) + r"(?:/[^\s<>\"']*)?")
    out, at = [], 0
    for match in pattern.finditer(text):
        url = match.group(0).rstrip(".,:;!?)")
        out.append(escape(text[at:match.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        at = match.start() + len(url)
    out.append(escape(text[at:]))
    return Markup("").join(out)


def init_app(app: Flask) -> None:
    from . import captcha

    app.jinja_env.globals.update(when=when, status_label=status_label, captcha_widget=captcha.widget,
                                 RegistrationStatus=RegistrationStatus, JobState=JobState)
    app.jinja_env.filters["job_label"] = job_label
    app.jinja_env.filters["own_links"] = own_links

    @app.context_processor
    def globals_for_pages():
        return {
            "current_lang": str(get_locale()),
            "organisation": current_app.config["ORGANISATION_NAME"],
            "other_language": other_language_url,
        }
