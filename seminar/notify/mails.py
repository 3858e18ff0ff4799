"""What each mail says. Composed at send time from current data, in the recipient's language.

Each composer returns a `Composed` (or None when the mail no longer applies, e.g. a reminder for a
seat that was cancelled meanwhile); `build_message` turns it into one MIME message with plain text,
HTML and, for invites, a `text/calendar` part plus an `.ics` attachment.
"""
from __future__ import annotations

from email import policy as email_policy
from email.headerregistry import HeaderRegistry, UnstructuredHeader


from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Callable

from flask import current_app

from .. import calendar, tokens
from ..extensions import db
from ..jobs import kinds
from ..models import Job, Registration, RegistrationStatus, User
from ..templating import status_label, when
from . import rendering
from .composed import Composed, _, in_language, language, ngettext  # noqa: F401  (Composed: for composers)


# A mail kind's handler (kinds.py) is its composer: (job, registration) for mails to attendees;
# mails to portal users (hosts, organisers) carry payload["user_id"] and get (job, user).
# Mails to the interest list (kind.to_subscribers) are neither: their composer gets (job), finds
# its recipient and renders (`finish`).
Composer = Callable[[Job, Registration], "Composed | None"]
UserComposer = Callable[[Job, User], "Composed | None"]
# Extra sentences for the "confirm your address" mail (the interest list says that confirming
# the sign-up confirms the list too); each gives a paragraph or None.
CONFIRM_NOTES: list[Callable[[Registration], "str | None"]] = []


def _details(reg: Registration) -> list[tuple[str, str]]:
    s = reg.seminar
    rows = [(_("Seminar"), s.title), (_("When"), _when(s))]
    if s.speakers:
        rows.append((_("Speakers"), s.speakers))
    return rows


def _when(seminar) -> str:
    """`when(seminar)`, formatted once per seminar time and language (Babel's date formatting is
    the slow part of composing an attendee's mail)."""
    key = (seminar.start_at, seminar.end_at, language(), current_app.config["TIMEZONE"])
    text = _WHEN.get(key)
    if text is None:
        if len(_WHEN) >= 64:
            _WHEN.clear()
        text = _WHEN[key] = when(seminar)
    return text


_WHEN: dict[tuple, str] = {}


def _with_invite(job: Job, reg: Registration, composed: Composed, description: str) -> Composed:
    method = job.payload.get("method")
    if method:
        composed.invite = calendar.invite(reg, method, job.payload["sequence"], composed.join_link, description)
        composed.invite_method = method
    return composed


def _letter(reg: Registration, subject: str, paragraphs: list[str], action: tuple[str, str] | None = None,
            join_link: str | None = None) -> Composed:
    """A mail to an attendee: greeted by name, the seminar's details below the text."""
    return Composed(subject=subject, paragraphs=[_("Hello %(name)s,", name=reg.name), *paragraphs],
                    action=action, join_link=join_link, details=_details(reg))


def _holds_seat(reg: Registration) -> bool:
    return reg.status == RegistrationStatus.CONFIRMED and not reg.seminar.is_cancelled


def confirm_address(job: Job, reg: Registration) -> Composed | None:
    if reg.status != RegistrationStatus.PENDING:
        return None
    hours = current_app.config["PENDING_LAPSE_HOURS"]
    return _letter(reg, _("Please confirm your sign-up: %(title)s", title=reg.seminar.title), [
        _("You signed up for the online seminar below. Please confirm your e-mail address "
          "with the button. Until you do, no seat is reserved for you."),
        ngettext("The link is valid for %(num)d hour.", "The link is valid for %(num)d hours.", hours),
        *(note(reg) for note in CONFIRM_NOTES),
        _("Did you not sign up yourself? Then you can ignore this mail: without confirmation "
          "your details are removed automatically."),
    ], action=(_("Confirm my sign-up"), tokens.link("confirm", reg)))


def already_registered(job: Job, reg: Registration) -> Composed | None:
    return _letter(reg, _("Your sign-up: %(title)s", title=reg.seminar.title), [
        _("Someone (probably you) signed up again with this address. You were already "
          "registered, so nothing has changed."),
        _("Your status: %(status)s.", status=status_label(reg.status)),
    ], action=(_("View my registration"), tokens.link("manage", reg)))


def _seat(job: Job, reg: Registration, subject: str, opening: str) -> Composed | None:
    if not _holds_seat(reg):
        return None
    join = tokens.link("join", reg)
    composed = _letter(reg, subject, [
        opening,
        _("Join the seminar with your personal link: %(link)s", link=join),
        _("The calendar invite in this mail puts the seminar in your agenda. The link is "
          "personal: please do not share it."),
        _("Can't make it after all? Please cancel via the link at the bottom, so that someone "
          "from the waitlist gets your seat."),
    ], action=(_("Join the seminar"), join), join_link=join)
    return _with_invite(job, reg, composed, _("Personal join link: %(link)s", link=join))


def seat_confirmed(job: Job, reg: Registration) -> Composed | None:
    return _seat(job, reg, _("Your seat is confirmed: %(title)s", title=reg.seminar.title),
                 _("Thank you for confirming. Your seat for the seminar is reserved."))


def promoted(job: Job, reg: Registration) -> Composed | None:
    return _seat(job, reg, _("A seat became free for you: %(title)s", title=reg.seminar.title),
                 _("Good news: a seat became available and it is now yours. You no longer are on "
                   "the waitlist."))


def waitlisted(job: Job, reg: Registration) -> Composed | None:
    if reg.status != RegistrationStatus.WAITLISTED:
        return None
    return _letter(reg, _("You are on the waitlist: %(title)s", title=reg.seminar.title), [
        _("Thank you for confirming. The seminar is full, so you are on the waitlist."),
        _("When a seat becomes free it is given to the first person on the waitlist "
          "automatically, and you receive a mail with your personal join link."),
    ])


def reminder(job: Job, reg: Registration) -> Composed | None:
    if not _holds_seat(reg) or not reg.join_url:
        return None
    hours = int(job.payload.get("hours", 24))
    join = tokens.link("join", reg)
    subject = ngettext("Reminder: %(title)s starts in %(num)d hour",
                       "Reminder: %(title)s starts in %(num)d hours", hours, title=reg.seminar.title)
    return _letter(reg, subject, [
        _("This is a reminder of the online seminar you signed up for."),
        _("Join with your personal link: %(link)s", link=join),
    ], action=(_("Join the seminar"), join), join_link=join)


def seminar_changed(job: Job, reg: Registration) -> Composed | None:
    if not _holds_seat(reg):
        return None
    join = tokens.link("join", reg)
    composed = _letter(reg, _("Changed: %(title)s", title=reg.seminar.title), [
        _("The seminar you signed up for has changed. The details below are the current "
          "ones; the calendar invite in this mail updates your agenda."),
        _("Join with your personal link: %(link)s", link=join),
    ], action=(_("Join the seminar"), join), join_link=join)
    return _with_invite(job, reg, composed, _("Personal join link: %(link)s", link=join))


def seminar_cancelled(job: Job, reg: Registration) -> Composed | None:
    composed = _letter(reg, _("Cancelled: %(title)s", title=reg.seminar.title), [
        _("We are sorry: the seminar below has been cancelled. Your registration has lapsed "
          "with it."),
        _("The calendar invite in this mail removes the seminar from your agenda.")
        if job.payload.get("method") else "",
    ])
    return _with_invite(job, reg, composed, _("This seminar has been cancelled."))


def registration_cancelled(job: Job, reg: Registration) -> Composed | None:
    composed = _letter(reg, _("Registration cancelled: %(title)s", title=reg.seminar.title), [
        _("Your registration for the seminar below has been cancelled."),
        _("The calendar invite in this mail removes the seminar from your agenda.")
        if job.payload.get("method") else "",
        _("Changed your mind? You can sign up again on the seminar page as long as there is room."),
    ])
    return _with_invite(job, reg, composed, _("Your registration has been cancelled."))


def compose(job: Job) -> Composed | None:
    kind = kinds.get(job.kind)
    if kind.to_subscribers:
        return kind.handle()(job)
    if (job.payload or {}).get("user_id") is not None:
        return _compose_for_user(job)
    reg = job.registration
    if reg is None or reg.status == RegistrationStatus.PURGED:
        return None
    with in_language(reg.language or "nl"):
        composed = kinds.get(job.kind).handle()(job, reg)
        if composed is None:
            return None
        composed.manage_link = tokens.link("manage", reg)
        composed.to = (reg.name, reg.email)
        _render(composed, reg.language)
    return composed


def _compose_for_user(job: Job) -> Composed | None:
    user = db.session.get(User, job.payload["user_id"])
    if user is None or not user.active:
        return None
    # Portal users are the association's staff and speakers: their mails are in Dutch.
    lang = current_app.config["BABEL_DEFAULT_LOCALE"]
    with in_language(lang):
        composed = kinds.get(job.kind).handle()(job, user)
        if composed is None:
            return None
        composed.to = (user.name, user.email)
        _render(composed, lang)
    return composed


def finish(composed: Composed, name: str, address: str, lang: str) -> Composed:
    """Address and render a mail whose composer found its recipient itself (call in_language)."""
    composed.to = (name, address)
    _render(composed, lang)
    return composed


def _render(composed: Composed, lang: str) -> None:
    composed.paragraphs = [p for p in composed.paragraphs if p]
    composed.rendered = rendering.render(composed, lang)


def new_message_id(job_id: int) -> str:
    return make_msgid(idstring=f"job{job_id}", domain=calendar.sender_domain())


class OneLineHeader(UnstructuredHeader):
    """A header written on one line as given. List-Unsubscribe's `<https://…>` must reach mail
    clients as it is; the email package would fold a URL longer than a line into encoded words
    (=?utf-8?q?…?=), which RFC 2369 clients do not decode. RFC 5322 allows lines up to 998."""

    def fold(self, *, policy) -> str:
        line = f"{self.name}: {self}"
        if line.isascii() and len(line) <= 998 and "\n" not in line and "\r" not in line:
            return line + policy.linesep
        return super().fold(policy=policy)


_registry = HeaderRegistry()
for _name in ("List-Unsubscribe", "List-Unsubscribe-Post"):
    _registry.map_to_type(_name, OneLineHeader)
# EmailMessage's default policy, with the one-line headers above (fastmime uses the same).
POLICY = email_policy.default.clone(header_factory=_registry)


def address_header(name: str, address: str) -> Address:
    """A To/From value for the email package's policy, which quotes or encodes the display name
    whole (`formataddr` output parsed again can split an encoded name into several addresses).
    A name holding "=?" looks like an encoded word: the policy would decode it (and a reader after
    it), so such a name is left out of the header; the mail's text still greets them by it."""
    if "=?" in name or not name.isprintable():
        name = ""
    return Address(display_name=name, addr_spec=address)


def build_message(composed: Composed, to_name: str, to_address: str, job_id: int, *,
                  date: str | None = None, message_id: str | None = None) -> EmailMessage:
    config = current_app.config
    sender_name, sender_address = parseaddr(config["MAIL_DEFAULT_SENDER"])
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = composed.subject
    msg["From"] = address_header(sender_name, sender_address)
    msg["To"] = address_header(to_name, to_address)
    msg["Reply-To"] = config.get("MAIL_REPLY_TO") or sender_address
    msg["Date"] = date or formatdate(localtime=False)
    msg["Message-ID"] = message_id or new_message_id(job_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in composed.headers:
        msg[name] = value
    text, html = composed.rendered
    # Quoted-printable keeps every part readable and 7-bit safe (no base64 bodies).
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    if composed.invite:
        # The calendar part is the last alternative, its method equal to the METHOD line, as
        # Outlook and Gmail expect; the same invite is attached as a file for other clients.
        ics = composed.invite.decode("utf-8")
        msg.add_alternative(ics, subtype="calendar", cte="quoted-printable",
                            params={"method": composed.invite_method})
        msg.add_attachment(composed.invite, maintype="application", subtype="ics",
                           filename="uitnodiging.ics")
    for filename, mimetype, data in composed.attachments:
        maintype, _slash, subtype = mimetype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg
