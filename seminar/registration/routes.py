"""Links from mails: confirm, manage (status and cancel), join.

A GET never changes anything: mail scanners and link previews fetch links. The GET shows a
button; the POST does the work.
"""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from ..attendance.matching import note_join_link_use
from ..errors import bad_link, render_error
from ..extensions import limiter
from ..models import RegistrationStatus
from ..public.routes import closed_message
from ..timeutil import utcnow
from ..tokens import InvalidToken, load_token, make_token
from . import service

bp = Blueprint("registration", __name__, url_prefix="/r")


def _registration(purpose: str, token: str):
    try:
        return load_token(purpose, token), None
    except InvalidToken as exc:
        if exc.expired and purpose == "confirm":
            return None, render_error(410, _("This link has expired"),
                                      _("Confirmation links are valid for a limited time. Please "
                                        "sign up again on the seminar page; you will receive a new link."))
        return None, bad_link()


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["CONFIRM_RATE_LIMIT"], methods=["POST"])
def confirm(token: str):
    reg, error = _registration("confirm", token)
    if error:
        return error
    if reg.status != RegistrationStatus.PENDING:
        # Used before (or lapsed): say so, and show the way to where things stand.
        return render_template("registration/used.html", reg=reg, seminar=reg.seminar,
                               manage_token=_manage_token(reg)), 409
    if request.method == "POST":
        try:
            reg = service.confirm(reg.id)
        except service.RegistrationClosed as exc:
            return render_error(409, _("Confirming is no longer possible"), closed_message(exc.reason))
        return redirect(url_for("registration.manage", token=_manage_token(reg), confirmed=1), code=303)
    return render_template("registration/confirm.html", reg=reg, seminar=reg.seminar)


def _manage_token(reg) -> str:
    return make_token("manage", reg)


@bp.route("/manage/<token>", methods=["GET", "POST"])
def manage(token: str):
    reg, error = _registration("manage", token)
    if error:
        return error
    cancelled_now = False
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            return render_error(400)
        try:
            reg = service.cancel(reg.id, by_attendee=True)
        except service.RegistrationClosed:
            return render_error(409, _("Cancelling is no longer possible"),
                                _("This seminar has already started, so cancelling is no longer "
                                  "possible. Your registration stays as it is."))
        cancelled_now = True
    position = service.waitlist_position(reg) if reg.status == RegistrationStatus.WAITLISTED else None
    return render_template("registration/manage.html", reg=reg, seminar=reg.seminar, token=token,
                           cancelled_now=cancelled_now, position=position,
                           can_cancel=service.can_cancel(reg),
                           just_confirmed=request.args.get("confirmed") == "1")


@bp.get("/join/<token>")
def join(token: str):
    reg, error = _registration("join", token)
    if error:
        return error
    seminar = reg.seminar
    if reg.status != RegistrationStatus.CONFIRMED or seminar.is_cancelled:
        return render_error(410, _("This join link is no longer valid"),
                            _("Your registration or the seminar has been cancelled."))
    if not reg.join_url:
        return render_error(409, _("Your join link is being prepared"),
                            _("Please try again in a few minutes."))
    if seminar.video_provider == "jitsi":
        # Jitsi reports no attendance: this link's first use during the seminar is what we know.
        note_join_link_use(reg, utcnow())
    return redirect(reg.join_url, code=302)
