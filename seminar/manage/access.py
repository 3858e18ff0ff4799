"""Who may see what in the portal, decided in this one module.

- Every /manage page needs a login, except the login and password-reset pages (`require_login`).
- Organisers may do everything; hosts only see the seminars they host. A seminar (or a
  registration in it) that a host does not host answers 404, exactly like one that does not exist,
  so trying other ids reveals nothing (`seminar_or_404`, `with_seminar`).
- Organiser-only pages answer 403 to hosts (`organiser_required`).
"""
from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import Callable
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import select, update

from ..database import write_transaction
from ..errors import render_error
from ..extensions import db, login_manager
from ..models import Registration, RegistrationStatus, Seminar, User, seminar_hosts
from ..timeutil import utcnow
from .passwords import fingerprint

bp = Blueprint("manage", __name__, url_prefix="/manage")

PUBLIC_ENDPOINTS = {"manage.login", "manage.forgot_password", "manage.reset_password"}


@bp.record_once
def _configure_login(state) -> None:
    login_manager.login_view = "manage.login"
    login_manager.login_message = _l("Please log in to continue.")
    # "strong": a session cookie used from another browser or address is dropped, not trusted.
    login_manager.session_protection = "strong"


def start_session(user: User) -> None:
    """Remember when, with which password and which session version of the account the session
    started (see `require_login`)."""
    session["login_at"] = utcnow().timestamp()
    session["pw"] = fingerprint(user)
    session["sv"] = user.session_version


def forget_login() -> None:
    """What `start_session` remembered, gone (after logout_user)."""
    for key in ("login_at", "pw", "sv"):
        session.pop(key, None)


def end_sessions(user_id: int) -> None:
    """Every session of this account ends, also a copy of its cookie kept elsewhere: the cookie
    is signed, not stored, so the server side is the account's session version."""
    with write_transaction():
        db.session.execute(update(User).where(User.id == user_id)
                           .values(session_version=User.session_version + 1))


@bp.before_request
def require_login():
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("manage.login", next=request.full_path.rstrip("?")))
    hours = current_app.config["PORTAL_SESSION_HOURS"]
    started = session.get("login_at", 0)
    expired = utcnow().timestamp() - started > timedelta(hours=hours).total_seconds()
    # A password change (e.g. after a reset) ends every other session of that account.
    if (expired or session.get("pw") != fingerprint(current_user)
            or session.get("sv") != current_user.session_version):
        logout_user()
        forget_login()
        flash(_l("Your session has expired. Please log in again."), "notice")
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("manage.login", next=target))
    return None


@bp.errorhandler(CSRFError)
def csrf_error(exc):
    """A form without (or with an expired) token is refused with 400. When the session itself is
    gone the next step is logging in again, so say that."""
    if not current_user.is_authenticated and request.endpoint not in PUBLIC_ENDPOINTS:
        return render_error(400, _l("Your session has expired"),
                            _l("Please log in again and repeat what you were doing."))
    return render_error(400, _l("The form has expired"),
                        _l("For your safety the form is only valid for a limited time. "
                           "Please reload the page and submit it again."))


def refuse_controls(target: str | None) -> None:
    """A redirect target with control characters (CR/LF) or spaces cannot be a Location: 400."""
    if target and (not target.isprintable() or any(ch.isspace() for ch in target)):
        abort(400)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    refuse_controls(target)
    if target:
        parts = urlsplit(target)
        if (not parts.scheme and not parts.netloc and target.startswith("/")
                and not target.startswith("//") and "\\" not in target
                and parts.path.startswith("/manage")):
            return target
    return url_for("manage.dashboard")


def hosts_seminar(user: User, seminar_id: int) -> bool:
    return db.session.scalar(
        select(seminar_hosts.c.user_id).where(seminar_hosts.c.seminar_id == seminar_id,
                                              seminar_hosts.c.user_id == user.id)
    ) is not None


def seminar_or_404(seminar_id: int) -> Seminar:
    seminar = db.session.get(Seminar, seminar_id)
    if seminar is None or not (current_user.is_organiser or hosts_seminar(current_user, seminar.id)):
        abort(404)
    return seminar


def registration_or_404(seminar: Seminar, registration_id: int) -> Registration:
    reg = db.session.get(Registration, registration_id)
    if reg is None or reg.seminar_id != seminar.id or reg.status == RegistrationStatus.PURGED:
        abort(404)
    return reg


def organiser_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_organiser:
            abort(403)
        return view(*args, **kwargs)
    return wrapped


def with_seminar(organiser_only: bool = False) -> Callable:
    """Turn the URL's `seminar_id` into the seminar the user may see (else 404); with
    `organiser_only`, a host who does host it gets 403."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(seminar_id: int, **kwargs):
            seminar = seminar_or_404(seminar_id)
            if organiser_only and not current_user.is_organiser:
                abort(403)
            return view(seminar, **kwargs)
        return wrapped
    return decorate


def visible_seminars() -> list[Seminar]:
    stmt = select(Seminar).order_by(Seminar.start_at.desc())
    if not current_user.is_organiser:
        stmt = stmt.join(seminar_hosts, seminar_hosts.c.seminar_id == Seminar.id).where(
            seminar_hosts.c.user_id == current_user.id)
    return list(db.session.scalars(stmt))
