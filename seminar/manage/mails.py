"""Mails to portal users (hosts and organisers), composed at send time like every other mail.

Each is the handler of its mail kind (seminar/jobs/kinds.py); the jobs carry `payload["user_id"]`.
"""
from __future__ import annotations

from flask_babel import format_datetime, gettext as _, ngettext

from ..models import Job, Registration, User
from ..notify.mails import Composed
from ..templating import when
from ..tokens import external_url
from ..notify.digests import digest_for, previous_digest_at
from ..notify.mail_schedule import budget
from ..notify.relay_notice import moment
from ..security import redact
from .passwords import INVITE_DAYS, RESET_HOURS, make_reset_token


def _person(reg: Registration) -> str:
    return f"{reg.name} ({reg.organisation})" if reg.organisation else reg.name


def _hello(user: User) -> str:
    return _("Hello %(name)s,", name=user.name) if user.name else _("Hello,")


def host_digest(job: Job, user: User) -> Composed | None:
    seminar = job.seminar
    if seminar is None or not seminar.is_published or user not in seminar.hosts:
        return None
    hours = int(job.payload.get("hours", 24))
    final = bool(job.payload.get("final"))
    digest = digest_for(seminar, previous_digest_at(job))
    paragraphs = [
        _hello(user),
        ngettext("The seminar below starts in %(num)d hour. Here is the current attendee list.",
                 "The seminar below starts in %(num)d hours. Here is the current attendee list.",
                 hours),
        _("This is the final list before the start.") if final else "",
        _("Seats taken: %(confirmed)d of %(capacity)d. On the waitlist: %(waitlisted)d. "
          "Signed up but not yet confirmed: %(pending)d.", confirmed=len(digest.confirmed),
          capacity=seminar.capacity, waitlisted=len(digest.waitlisted), pending=digest.pending),
    ]
    if digest.since is None:
        paragraphs.append(_("This is the first list for this seminar."))
    else:
        paragraphs.append(_("Since the previous list (%(time)s): %(joined)d joined, %(left)d left.",
                            time=format_datetime(digest.since, "d MMMM HH:mm"),
                            joined=len(digest.joined) + len(digest.promoted), left=len(digest.left)))
        paragraphs += [_("New: %(person)s", person=_person(r)) for r in digest.joined]
        paragraphs += [_("From the waitlist to a seat: %(person)s", person=_person(r))
                       for r in digest.promoted]
        paragraphs += [_("Cancelled: %(person)s", person=_person(r)) for r in digest.left]
    if digest.confirmed:
        paragraphs.append(_("Attendees with a seat:"))
        paragraphs += [f"{n}. {_person(r)}" for n, r in enumerate(digest.confirmed, 1)]
    else:
        paragraphs.append(_("Nobody has a seat yet."))
    if digest.waitlisted:
        paragraphs.append(_("On the waitlist, in order:"))
        paragraphs += [f"{n}. {_person(r)}" for n, r in enumerate(digest.waitlisted, 1)]
    portal = external_url("manage.attendees", seminar_id=seminar.id)
    paragraphs += [
        _("The full list with e-mail addresses and questions is in the portal: %(link)s", link=portal),
        _("No password yet? Choose “Forgot your password?” on the login page to set one."),
    ]
    subject = (_("Final attendee list: %(title)s", title=seminar.title) if final
               else _("Attendee list: %(title)s", title=seminar.title))
    return Composed(
        subject=subject,
        paragraphs=paragraphs,
        action=(_("Download the attendee list (Excel)"),
                external_url("manage.export", seminar_id=seminar.id, fmt="xlsx")),
        details=[(_("Seminar"), seminar.title), (_("When"), when(seminar))],
        footer=_("You receive this mail because you are a host of this seminar."),
    )


def password_reset(job: Job, user: User) -> Composed | None:
    invite = bool(job.payload.get("invite"))
    link = external_url("manage.reset_password", token=make_reset_token(user, invite=invite))
    if invite:
        subject = _("Your account for the seminar portal")
        intro = _("An account for the seminar portal has been made for you. There you can see "
                  "who signed up for the seminars you host. Choose a password with the button.")
        validity = ngettext("The link is valid for %(num)d day and works once.",
                            "The link is valid for %(num)d days and works once.", INVITE_DAYS)
    else:
        subject = _("Choose a new password for the seminar portal")
        intro = _("Someone (probably you) asked to reset the password of your account for the "
                  "seminar portal. Choose a new password with the button.")
        validity = ngettext("The link is valid for %(num)d hour and works once.",
                            "The link is valid for %(num)d hours and works once.", RESET_HOURS)
    return Composed(
        subject=subject,
        paragraphs=[_hello(user), intro, validity,
                    _("Did you not ask for this? Then you can ignore this mail; your password "
                      "stays as it is.") if not invite else ""],
        action=(_("Choose a password"), link),
        footer=_("You receive this mail because you have an account for the seminar portal."),
        confidential=True,
    )


def relay_held(job: Job, user: User) -> Composed | None:
    """Bulk mail has been held for over an hour: the relay's quota is used up (notify/relay_notice)."""
    status = budget().status()
    since = moment(job.payload.get("held") or status.held_since)
    paragraphs = [
        _hello(user),
        _("Since %(time)s the mail relay has refused more mail: its quota is used up.",
          time=format_datetime(since, "d MMMM HH:mm")) if since else
        _("The mail relay has refused more mail: its quota is used up."),
        _("Mail to many (calendar updates, reminders, announcements) is held back and goes out by "
          "itself once the quota allows it again. Nothing is lost. Mail a person is waiting for "
          "(confirmations) is still tried first."),
    ]
    if status.held_until is not None:
        paragraphs.append(_("The next try is at about %(time)s.",
                            time=format_datetime(moment(status.held_until), "d MMMM HH:mm")))
    if status.held_reason:
        paragraphs.append(_("The relay said: %(reason)s", reason=redact(status.held_reason)))
    paragraphs.append(_("If this happens more often, ask for a higher quota, or set MAIL_RATE_LIMIT "
                        "to the relay's quota so that the service spreads mail over the day."))
    return Composed(
        subject=_("Mail is being held back: the relay's quota is used up"),
        paragraphs=paragraphs,
        action=(_("View the outbox"), external_url("manage.outbox", state="pending", family="mail")),
        footer=_("You receive this mail because you are an organiser in the seminar portal."),
    )
