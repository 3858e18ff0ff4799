"""Public pages. Views are thin: they validate input and call the service functions."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _
from sqlalchemy import text

from .. import calendar, captcha
from ..errors import render_error
from ..extensions import db, limiter
from ..models import SeminarState
from ..reach.home import index_context
from ..reach.service import SubscribeData, subscribe
from ..programme.service import by_slug, page_by_slug, upcoming
from ..registration.forms import SignUpForm
from ..registration.service import (NoSuchSeminar, RegistrationClosed, SignUpData, closed_reason,
                                    sign_up_at)
from ..tokens import external_url
from .pages import render_form_page, render_signup_page

bp = Blueprint("public", __name__)


@bp.get("/")
def index():
    return render_template("public/index.html", seminars=upcoming(), **index_context())


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        return jsonify(status="unavailable"), 503
    return jsonify(status="ok")


@bp.get("/privacy")
def privacy():
    return render_template("public/privacy.html", interest_days=current_app.config["INTEREST_RETENTION_DAYS"])


def _visible_seminar(slug: str, load=by_slug):
    """The published (or cancelled) seminar at `slug`, else 404. `load`: by_slug for the ORM
    object, page_by_slug for the plain row the sign-up page reads (see pages.py)."""
    seminar = load(slug)
    if seminar is None or seminar.state == SeminarState.DRAFT:
        abort(404)
    return seminar


def closed_message(reason: str) -> str:
    return {
        "cancelled": _("This seminar has been cancelled. Signing up is no longer possible."),
        "started": _("This seminar has already started. Signing up is no longer possible."),
        "draft": _("Signing up for this seminar is not open yet."),
    }[reason]


def _signup_address() -> str:
    """Limit key per e-mail address typed (normalised), so one address can't be flooded with
    confirmation mails from many client addresses."""
    return "signup-address:" + (request.form.get("email") or "").strip().lower()[:254]


@bp.route("/seminars/<slug>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGNUP_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["SIGNUP_ADDRESS_RATE_LIMIT"], methods=["POST"],
               key_func=_signup_address, exempt_when=lambda: not request.form.get("email"))
def seminar_page(slug: str):
    if request.method != "POST":
        seminar = _visible_seminar(slug, page_by_slug)
        reason = closed_reason(seminar)
        return render_signup_page(seminar, closed_message(reason) if reason else None)
    form = SignUpForm()
    honeypot = bool(form.website.data)
    valid = not honeypot and form.validate()
    if honeypot or not valid or captcha.enabled():
        # Not a plain sign-up: answer in this order, as the page always has.
        seminar = _visible_seminar(slug, page_by_slug)
        reason = closed_reason(seminar)
        if reason:
            return _closed(reason)
        if honeypot:
            # A bot filled the honeypot: answer as if all went well, store nothing.
            current_app.logger.info("sign-up refused: honeypot filled")
            return redirect(url_for("public.signed_up", slug=seminar.slug), code=303)
        if not valid:
            return render_form_page(seminar, form), 400
        if not captcha.passed(request.form):
            return render_form_page(seminar, form, captcha_failed=True), 400
    data = SignUpData(
        name=form.name.data, email=form.email.data, organisation=form.organisation.data,
        location_type=form.location_type.data, question=form.question.data or "",
        language=str(get_locale()), function=form.function.data or "",
        register_number=form.register_number.data or "",
    )
    try:
        # Finds the seminar in the sign-up's own transaction: no page, or closed, is told the
        # same way as above.
        reg_id = sign_up_at(slug, data)
    except NoSuchSeminar:
        abort(404)
    except RegistrationClosed as exc:
        return _closed(exc.reason)
    if form.interest.data:
        subscribe(SubscribeData(email=data.email, name=data.name, organisation=data.organisation,
                                location_type=data.location_type, language=data.language), reg_id)
    # Post/Redirect/Get: a reload does not submit twice, and the page is the same for a new and
    # a known address.
    return redirect(url_for("public.signed_up", slug=slug), code=303)


def _closed(reason: str):
    if reason == "draft":  # not published (any more): no page here
        abort(404)
    return render_error(409 if reason == "started" else 410, _("Signing up is closed"),
                        closed_message(reason))


@bp.get("/seminars/<slug>/aangemeld")
def signed_up(slug: str):
    return render_template("public/signed_up.html", seminar=_visible_seminar(slug))


@bp.get("/seminars/<slug>.ics")
def seminar_ics(slug: str):
    seminar = _visible_seminar(slug)
    page = external_url("public.seminar_page", slug=seminar.slug)
    body = calendar.public_calendar(seminar, page, _("More information and sign-up: %(url)s", url=page))
    return Response(body, mimetype="text/calendar",
                    headers={"Content-Disposition": f'attachment; filename="{seminar.slug}.ics"'})
