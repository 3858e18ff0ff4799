"""Public pages of the reach area: the programme feeds, the embeddable listing, the interest-list
form and the links mailed to subscribers (confirm, unsubscribe, still interested, reserve).

A GET never changes anything (mail scanners follow links): it shows a button, the POST acts. The
one-click unsubscribe POST needs no session and no CSRF token (RFC 8058: mail clients send it
without cookies); its signed token is the proof. Every bad link answers the same 404.
"""
from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l

from ..errors import bad_link, render_error
from ..extensions import csrf, db, limiter
from ..models import Seminar, SeminarState
from ..programme.service import upcoming
from ..public.routes import closed_message
from ..tokens import external_url, make_token
from . import announce, feeds, service
from .forms import InterestForm, ReserveForm
from .models import SubscriberStatus
from .home import index_context
from .tokens import InvalidLink, load_token

bp = Blueprint("reach", __name__)
FEED_CACHE = "public, max-age=300"


@bp.get("/programma.ics")
def programme_ics():
    return Response(feeds.programme_ics(), mimetype="text/calendar",
                    headers={"Content-Disposition": 'inline; filename="programma.ics"',
                             "Cache-Control": FEED_CACHE})


@bp.get("/programma.atom")
def programme_atom():
    return Response(feeds.programme_atom(), mimetype="application/atom+xml",
                    headers={"Cache-Control": FEED_CACHE})


@bp.get("/embed")
def embed():
    # Framing is decided in security.py (frame-ancestors from EMBED_ORIGINS for this page only).
    return render_template("reach/embed.html", seminars=upcoming(), page_url=feeds.page_url,
                           home_url=external_url("public.index"))


def _interest_address() -> str:
    return "interest-address:" + (request.form.get("email") or "").strip().lower()[:254]


@bp.post("/interesse")
@limiter.limit(lambda: current_app.config["SIGNUP_RATE_LIMIT"])
@limiter.limit(lambda: current_app.config["SIGNUP_ADDRESS_RATE_LIMIT"], key_func=_interest_address,
               exempt_when=lambda: not request.form.get("email"))
def subscribe():
    form = InterestForm()
    if form.website.data:
        current_app.logger.info("interest list: honeypot filled")
        return redirect(url_for("reach.subscribed"), code=303)
    if not form.validate():
        return render_template("public/index.html", seminars=upcoming(), **index_context(form)), 400
    service.subscribe(service.SubscribeData(
        email=form.email.data, name=form.name.data or "", organisation=form.organisation.data or "",
        language=form.language.data))
    # The same page for a new, a pending and a known address.
    return redirect(url_for("reach.subscribed"), code=303)


@bp.get("/interesse")
def interest_form():
    # The form lives on the home page. This address is only in the browser after a refused POST:
    # its language links and a reload come here (a 405 otherwise).
    lang = request.args.get("lang")
    return redirect(url_for("public.index", lang=lang if lang in ("nl", "en") else None), code=303)


@bp.get("/interesse/bedankt")
def subscribed():
    return render_template("reach/subscribed.html")


def _subscriber(purpose: str, token: str):
    try:
        return load_token(purpose, token)
    except InvalidLink:
        return None, None


class LinkPage(NamedTuple):
    """The two pages of a list link: what pressing its button does (`title`, `message`,
    `button`; a GET changes nothing), and what it did (`done_title`, `done_message`)."""
    title: str
    message: str
    button: str
    done_title: str
    done_message: str
    one_click: bool = False  # RFC 8058's token-only form (no session, no CSRF token)


# By the link's token purpose.
LINK_PAGES = {
    "confirm": LinkPage(
        _l("Confirm: keep me informed"),
        _l("Press the button to receive a mail when a new seminar opens for sign-up."),
        _l("Yes, keep me informed"), _l("You are on the list"),
        _l("Thank you. We will mail you when a new seminar opens for sign-up. Every mail has a link "
           "to unsubscribe.")),
    "still": LinkPage(
        _l("Do you still want our seminar announcements?"), _l("Press the button to stay on the list."),
        _l("Yes, keep me informed"), _l("You stay on the list"),
        _l("Thank you. We will keep mailing you when a new seminar opens for sign-up.")),
    "unsubscribe": LinkPage(
        _l("Unsubscribe from seminar announcements"),
        _l("Press the button to stop receiving announcements of new seminars."), _l("Unsubscribe"),
        _l("You are unsubscribed"),
        _l("You will not receive any more announcements from us. Sign-ups you made for a seminar are "
           "not affected."), one_click=True),
}


def _link_page(purpose: str, done: bool):
    """The page of the list link for `purpose`: what its button did once `done`, else the button."""
    page = LINK_PAGES[purpose]
    if done:
        return render_template("reach/done.html", title=page.done_title, message=page.done_message)
    return render_template("reach/button.html", title=page.title, message=page.message, button=page.button,
                           csrf=not page.one_click, one_click=page.one_click)


@bp.route("/r/list/confirm/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["CONFIRM_RATE_LIMIT"], methods=["POST"])
def confirm(token: str):
    sub, _seminar = _subscriber("confirm", token)
    if sub is None or sub.status == SubscriberStatus.UNSUBSCRIBED:
        return bad_link()
    if request.method == "POST" and sub.status == SubscriberStatus.PENDING:
        sub = service.confirm(sub.id)
        if sub is None:
            return bad_link()
    return _link_page("confirm", done=sub.is_active)


@bp.route("/r/list/still/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["CONFIRM_RATE_LIMIT"], methods=["POST"])
def still_interested(token: str):
    sub, _seminar = _subscriber("still", token)
    if sub is None or not sub.is_active:
        return bad_link()
    if request.method == "POST" and service.still_interested(sub.id) is None:
        return bad_link()
    return _link_page("still", done=request.method == "POST")


@bp.route("/r/list/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    """RFC 8058: a POST (from the mail client, body List-Unsubscribe=One-Click, or the button
    below) unsubscribes; a GET only shows the button."""
    sub, seminar_id = _subscriber("unsubscribe", token)
    if sub is None:
        return bad_link()
    if request.method == "POST":
        service.unsubscribe(sub.id, seminar_id)
        sub = db.session.get(type(sub), sub.id)
    return _link_page("unsubscribe", done=sub.status == SubscriberStatus.UNSUBSCRIBED)


@bp.route("/r/list/reserve/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["CONFIRM_RATE_LIMIT"], methods=["POST"])
def reserve(token: str):
    sub, seminar_id = _subscriber("reserve", token)
    seminar = db.session.get(Seminar, seminar_id) if seminar_id else None
    if sub is None or seminar is None or seminar.state == SeminarState.DRAFT:
        return bad_link()
    try:
        announce.check_reserve(sub, seminar)
    except announce.ReserveRefused as exc:
        return _refused(exc)
    form = ReserveForm() if request.method == "POST" else ReserveForm(
        data={"name": sub.name, "organisation": sub.organisation, "location_type": sub.location_type})
    if request.method == "POST" and form.validate():
        try:
            reg = announce.reserve(sub, seminar, name=form.name.data, organisation=form.organisation.data,
                                   location_type=form.location_type.data, language=str(get_locale()),
                                   function=form.function.data or "",
                                   register_number=(form.register_number.data or "") if seminar.is_accredited else "")
        except announce.ReserveRefused as exc:
            return _refused(exc)
        return redirect(url_for("registration.manage", token=make_token("manage", reg), confirmed=1), code=303)
    return render_template("reach/reserve.html", seminar=seminar, form=form,
                           seats_left=seminar.seats_left), 400 if form.errors else 200


def _refused(exc: announce.ReserveRefused):
    if exc.reason == "closed":
        return render_error(409 if exc.closed == "started" else 410, _("Signing up is closed"),
                            closed_message(exc.closed))
    if exc.reason == "registered":
        return render_error(409, _("You are already signed up"),
                            _("This address already has a place for this seminar (or is on its "
                              "waitlist). The mails we sent you have the link to view or cancel it."))
    return render_error(410, _("This link no longer works"),
                        _("This address is no longer on our list for announcements. You can still "
                          "sign up on the seminar page."))
