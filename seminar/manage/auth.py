"""Logging in and out, and passwords: forgotten, reset by mail, changed."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from ..accounts import check_password
from ..extensions import db, limiter
from ..models import User
from .access import bp, end_sessions, forget_login, refuse_controls, safe_next, start_session
from .forms import ChangePasswordForm, ForgotPasswordForm, LoginForm, NewPasswordForm
from .passwords import InvalidResetLink, change_password, load_reset_token, request_reset


# Checked against when there is no password to check (unknown address, an account without a
# password yet): with the cost parameters `set_password` uses, so every login attempt costs one
# scrypt check of the same cost. (A constant: computing it on first use made the first unknown
# address slower than the rest.)
DUMMY_HASH = ("scrypt:32768:8:1$qTJ2ozgenWYrbozR$73cced72a40d6e7f4b052ef6a8c0fb777ad452cf9cee86ec84903630"
              "9ae11a64fbde73f952335633ea85042cf67ceb5aae484f804b55a589e33b4159fb02a857")


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
        # Exactly one check of the same cost whoever asks: unknown, inactive, without a password,
        # wrong or right; only then is the answer decided.
        stored = user.password_hash if user is not None and user.password_hash else None
        matches = check_password_hash(stored or DUMMY_HASH, form.password.data)
        if stored and matches and user.active:
            login_user(user, remember=False)
            start_session(user)
            return redirect(safe_next(request.args.get("next")), code=303)
        failed = True
    # A wrong password is an answer, not a broken request: the form again with a clear message.
    return render_template("manage/login.html", form=form, failed=failed), (400 if form.errors else 200)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        end_sessions(current_user.id)  # a copy of this session's cookie opens nothing any more
    logout_user()
    forget_login()
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
