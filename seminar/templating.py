"""Helpers that pages and mails share: times in TIMEZONE, status names, the language switch."""
from __future__ import annotations

from flask import Flask, current_app, request, url_for
from flask_babel import format_date, format_time, get_locale, gettext as _, lazy_gettext

from .models import Seminar

STATUS_LABELS = {
    "pending": lazy_gettext("waiting for your confirmation"),
    "confirmed": lazy_gettext("seat confirmed"),
    "waitlisted": lazy_gettext("on the waitlist"),
    "cancelled": lazy_gettext("cancelled"),
    "lapsed": lazy_gettext("lapsed (not confirmed in time)"),
    "purged": lazy_gettext("removed"),
}


JOB_LABELS = {
    "mail.confirm_address": lazy_gettext("Mail: confirm your address"),
    "mail.already_registered": lazy_gettext("Mail: already registered"),
    "mail.seat_confirmed": lazy_gettext("Mail: seat confirmed, with invite"),
    "mail.promoted": lazy_gettext("Mail: seat from the waitlist, with invite"),
    "mail.waitlisted": lazy_gettext("Mail: on the waitlist"),
    "mail.reminder": lazy_gettext("Mail: reminder"),
    "mail.seminar_changed": lazy_gettext("Mail: seminar changed, calendar update"),
    "mail.seminar_cancelled": lazy_gettext("Mail: seminar cancelled"),
    "mail.registration_cancelled": lazy_gettext("Mail: registration cancelled"),
    "mail.host_digest": lazy_gettext("Mail: attendee list for hosts"),
    "mail.password_reset": lazy_gettext("Mail: portal password link"),
    "video.create_meeting": lazy_gettext("Platform: create meeting"),
    "video.update_meeting": lazy_gettext("Platform: update meeting"),
    "video.delete_meeting": lazy_gettext("Platform: delete meeting"),
    "video.add_attendee": lazy_gettext("Platform: add attendee"),
    "video.remove_attendee": lazy_gettext("Platform: remove attendee"),
    "video.forget_attendee": lazy_gettext("Platform: remove attendee data"),
    "video.check_meeting": lazy_gettext("Platform: check meeting"),
    "video.reconcile": lazy_gettext("Platform: reconcile attendees"),
    "video.attendance": lazy_gettext("Platform: fetch attendance"),
}


def job_label(kind: str) -> str:
    """What an outbox entry is, in words (the kind itself for anything unnamed)."""
    return str(JOB_LABELS.get(kind, kind))


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
    args = dict(request.view_args or {})
    args.update(request.args.to_dict())
    args["lang"] = target
    try:
        url = url_for(request.endpoint, **args) if request.endpoint else f"?lang={target}"
    except Exception:  # an endpoint that cannot be rebuilt (errors): stay on the same path
        url = f"{request.path}?lang={target}"
    return url, ("English" if target == "en" else "Nederlands"), target


def init_app(app: Flask) -> None:
    from . import captcha

    app.jinja_env.globals.update(when=when, status_label=status_label, captcha_widget=captcha.widget)
    app.jinja_env.filters["job_label"] = job_label

    @app.context_processor
    def globals_for_pages():
        return {
            "current_lang": str(get_locale()),
            "organisation": current_app.config["ORGANISATION_NAME"],
            "other_language": other_language_url,
        }
