"""Logging in and out, and passwords: forgotten, reset by mail, changed."""
from __future__ import annotations

from functools import cache

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..accounts import check_password
from ..extensions import db, limiter
from ..models import User
from .access import bp, refuse_controls, safe_next, start_session
from .forms import ChangePasswordForm, ForgotPasswordForm, LoginForm, NewPasswordForm
from .passwords import InvalidResetLink, change_password, load_reset_token, request_reset


@cache
def _dummy_hash() -> str:
    """Checked against when the address is unknown, so that takes as long as a wrong password."""
    return generate_password_hash("no such account", method="scrypt")


def login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _posted_email() -> str:
    return (request.form.get("email") or "").strip().lower() or request.remote_addr or ""


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
               key_func=_posted_email, methods=["POST"])
def login():
    refuse_controls(request.args.get("next"))  # before anything happens, not after logging in
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    failed = False
    if form.validate_on_submit():
        email = form.email.data.lower()
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            check_password_hash(_dummy_hash(), form.password.data)
        elif user.active and check_password(user, form.password.data):
            login_user(user, remember=False)
            start_session(user)
            return redirect(safe_next(request.args.get("next")), code=303)
        failed = True
    # A wrong password is an answer, not a broken request: the form again with a clear message.
    return render_template("manage/login.html", form=form, failed=failed), (400 if form.errors else 200)


@bp.post("/logout")
def logout():
    logout_user()
    session.pop("login_at", None)
    session.pop("pw", None)
    flash(_("You are logged out."), "success")
    return redirect(url_for("manage.login"), code=303)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        request_reset(form.email.data)
        # The same answer for every address: the page never tells who has an account.
        return render_template("manage/forgot_password.html", form=form, sent=True)
    return render_template("manage/forgot_password.html", form=form, sent=False), \
        (400 if form.errors else 200)


@bp.route("/reset/<token>", methods=["GET", "POST"])  # path known to the log redaction
@limiter.limit(login_limit, methods=["POST"])
def reset_password(token: str):
    try:
        user = load_reset_token(token)
    except InvalidResetLink:
        return render_template("manage/reset_password.html", form=None, invalid=True), 410
    form = NewPasswordForm()
    if form.validate_on_submit():
        change_password(user.id, form.password.data)
        logout_user()
        flash(_("Your password has been set. You can log in now."), "success")
        return redirect(url_for("manage.login"), code=303)
    return render_template("manage/reset_password.html", form=form, invalid=False), \
        (400 if form.errors else 200)


@bp.route("/account", methods=["GET", "POST"])
def account():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not check_password(current_user, form.current.data):
            form.current.errors.append(_("This is not your current password."))
        else:
            user = change_password(current_user.id, form.password.data)
            start_session(user)  # this session stays; every other one ends
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("manage.account"), code=303)
    return render_template("manage/account.html", form=form), (400 if form.errors else 200)
