"""The interest list's mails: confirm the list, already on it, the announcement, still interested?

Composed at send time from current data, in the subscriber's language, like every other mail
(notify/mails.py). Every announcement carries RFC 8058 one-click unsubscribe headers as well as a
visible link, and a personal reserve link.
"""
from __future__ import annotations

import functools
from typing import Callable

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import ACTIVE_STATUSES, Job, Registration, Seminar, User
from ..notify import mails as notify_mails
from ..notify.mails import Composed, _, finish, in_language, ngettext
from ..registration.service import closed_reason
from ..templating import when
from ..tokens import external_url
from . import service
from .models import Subscriber, SubscriberStatus
from .tokens import link

def _footer() -> str:
    return _("You receive this mail because you asked to hear about our seminars with this address.")


def https(url: str) -> str:
    """RFC 8058: the one-click address is https. BASE_URL is https in production; a development
    instance on plain http still gets an https address in the header (its visible link works)."""
    return "https://" + url.split("://", 1)[1] if url.startswith("http://") else url


def _subscriber(job: Job) -> Subscriber | None:
    ident = (job.payload or {}).get("subscriber_id")
    return db.session.get(Subscriber, ident) if isinstance(ident, int) else None


def _hello(sub: Subscriber) -> str:
    return _("Hello %(name)s,", name=sub.name) if sub.name else _("Hello,")


def _to_subscriber(wanted: Callable[[Subscriber], bool]):
    """A composer of a mail to the job's subscriber (payload["subscriber_id"]): the decorated
    `write(job, sub)` runs in the subscriber's language and its mail is addressed to them. No mail
    when the subscriber is gone, when `wanted(sub)` is false, or when `write` returns None."""
    def decorate(write: Callable[[Job, Subscriber], Composed | None]) -> Callable[[Job], Composed | None]:
        @functools.wraps(write)
        def composer(job: Job) -> Composed | None:
            sub = _subscriber(job)
            if sub is None or not wanted(sub):
                return None
            with in_language(sub.language):
                composed = write(job, sub)
                return None if composed is None else finish(composed, sub.name, sub.email, sub.language)
        return composer
    return decorate


def _on_the_list(sub: Subscriber, subject: str, body: list[str], unsubscribe: str | None = None, *,
                 one_click: bool, **more) -> Composed:
    """A mail to someone on the list: hello, `body`, the unsubscribe link (made for `sub` unless
    given), the list's footer; with `one_click` also RFC 8058's headers (mail clients show an
    unsubscribe button). `more`: Composed's other fields (action, details)."""
    unsubscribe = unsubscribe or link("unsubscribe", sub)
    return Composed(
        subject=subject,
        paragraphs=[_hello(sub), *body,
                    _("No more announcements? Unsubscribe with one click: %(link)s", link=unsubscribe)],
        footer=_footer(), headers=_unsubscribe_headers(unsubscribe) if one_click else [], **more)


@_to_subscriber(lambda sub: sub.status == SubscriberStatus.PENDING)
def list_confirm(job: Job, sub: Subscriber) -> Composed:
    hours = current_app.config["PENDING_LAPSE_HOURS"]
    return Composed(
        subject=_("Please confirm: announcements of our seminars"),
        paragraphs=[
            _hello(sub),
            _("You asked to receive a mail when a new online seminar for attention officers "
              "opens for sign-up. Please confirm with the button; until you do, you are not on "
              "the list."),
            ngettext("The link is valid for %(num)d hour.", "The link is valid for %(num)d hours.", hours),
            _("Did you not ask for this? Then ignore this mail: without confirmation your "
              "address is removed automatically."),
        ],
        action=(_("Yes, keep me informed"), link("confirm", sub)),
        footer=_footer(),
    )


@_to_subscriber(lambda sub: sub.is_active)
def list_known(job: Job, sub: Subscriber) -> Composed:
    return _on_the_list(sub, _("You are on our list for seminar announcements"), [
        _("Someone (probably you) asked again to receive our seminar announcements with "
          "this address. You are already on the list, so nothing has changed."),
    ], one_click=False)


@_to_subscriber(lambda sub: sub.is_active and sub.reconfirm_asked_at is not None)
def list_still(job: Job, sub: Subscriber) -> Composed:
    return _on_the_list(sub, _("Do you still want our seminar announcements?"), [
        _("You have been on our list for seminar announcements for a long time without "
          "signing up for a seminar. We only keep addresses of people who are still "
          "interested."),
        _("Please confirm with the button within 30 days. If you do not, we remove your "
          "address from the list; you can always sign up again on our site."),
    ], one_click=True, action=(_("Yes, keep me informed"), link("still", sub)))


def _unsubscribe_headers(unsubscribe: str) -> list[tuple[str, str]]:
    # RFC 8058: a mail client POSTs "List-Unsubscribe=One-Click" to this address, without cookies.
    return [("List-Unsubscribe", f"<{https(unsubscribe)}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]


def announcement(seminar: Seminar, sub: Subscriber, reserve: str, unsubscribe: str) -> Composed:
    """The announcement of `seminar` to `sub`, in the current language (also the portal preview)."""
    page = external_url("public.seminar_page", slug=seminar.slug)
    left = seminar.seats_left
    details = [(_("Seminar"), seminar.title), (_("When"), when(seminar))]
    if seminar.speakers:
        details.append((_("Speakers"), seminar.speakers))
    details.append((_("Seats"), ngettext("%(num)d seat left", "%(num)d seats left", left) if left
                    else _("Full: you can join the waitlist")))
    return _on_the_list(sub, _("New seminar: %(title)s", title=seminar.title), [
        _("A new online seminar for attention officers is open for sign-up."),
        seminar.description,
        _("Reserve your seat with one press: the link below opens the seminar's page with your "
          "name and organisation filled in, and no confirmation mail is needed. The link is "
          "personal: please do not forward it."),
        _("Colleagues can sign up on the seminar page: %(link)s", link=page),
    ], unsubscribe, one_click=True, action=(_("Reserve my seat"), reserve), details=details)


def already_signed_up(seminar_id: int, email_normalized: str) -> bool:
    return db.session.scalar(select(Registration.id).where(
        Registration.seminar_id == seminar_id, Registration.email_normalized == email_normalized,
        Registration.status.in_(ACTIVE_STATUSES)).limit(1)) is not None


@_to_subscriber(lambda sub: sub.is_active)
def announcement_mail(job: Job, sub: Subscriber) -> Composed | None:
    seminar = job.seminar
    if seminar is None or closed_reason(seminar):
        return None
    if already_signed_up(seminar.id, sub.email_normalized):
        return None  # signed up meanwhile: nothing to announce to them
    return announcement(seminar, sub, link("reserve", sub, seminar.id), link("unsubscribe", sub, seminar.id))


def announcement_test(job: Job, user: User) -> Composed | None:
    """The organiser's test send: the announcement as a subscriber named like them gets it; its
    personal links are examples that lead nowhere."""
    seminar = job.seminar
    if seminar is None:
        return None
    sample = Subscriber(id=0, nonce="test", name=user.name, email=user.email)
    composed = announcement(seminar, sample, external_url("public.seminar_page", slug=seminar.slug),
                            external_url("public.index"))
    composed.subject = "[Test] " + composed.subject
    return composed


def _confirm_note(reg: Registration) -> str | None:
    if service.pending_with(reg):
        return _("You also asked us to tell you about future seminars: confirming this sign-up "
                 "puts you on that list too. Every announcement has a link to unsubscribe.")
    return None


notify_mails.CONFIRM_NOTES.append(_confirm_note)
