"""The sign-up page, rendered once and reused; only the CSRF token is new per request.

Every visitor of a seminar's page is shown the same HTML except the form's CSRF token (one per
session). Rendering it (the field macro, the WTForms widgets, the translations) was most of what a
GET cost, so the blank page is rendered once per *everything it shows that can change* and each
request only puts its own token in. That key is made of the seminar's shown fields, the seats
left, why sign-up is closed (if it is), the language and the settings the page shows, so an
organiser's edit or a seat taken shows at once, in every process, with nothing to invalidate: a
changed seminar simply has another key. Only the blank form is kept (nothing anyone typed); a
submitted form, with its errors, is rendered as usual.
"""
from __future__ import annotations

import secrets

from flask import current_app, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf
from markupsafe import escape
from sqlalchemy import Row

from .. import captcha
from ..models import Seminar
from ..programme.service import PAGE_FIELDS, seats_left
from ..registration.forms import SignUpForm

TEMPLATE = "public/seminar.html"
# Seminars × languages × seat counts seen recently; a full cache is simply started again.
MAX_PAGES = 256
_PAGES = "seminar.signup_pages"  # per app in app.extensions: tests run several apps at once


def page_seminar(row: Row) -> Seminar:
    """A Seminar to render the page from, made from the row itself (so the page shows exactly
    what its key says); never added to the session."""
    return Seminar(**{name: getattr(row, name) for name in PAGE_FIELDS})


def _render(row: Row, form: SignUpForm, left: int | None, **context) -> str:
    return render_template(TEMPLATE, seminar=page_seminar(row), form=form, seats_left=left, **context)


def render_form_page(row: Row, form: SignUpForm, **context) -> str:
    """The sign-up page with a submitted form (its errors shown): rendered as it is."""
    return _render(row, form, seats_left(row), **context)


def render_signup_page(row: Row, closed: str | None) -> str:
    """The blank sign-up page of the seminar in `row` (from `page_by_slug`); `closed`: the notice
    shown instead of the form."""
    left = None if closed else seats_left(row)
    if request.args.keys() - {"lang"}:
        # Other query arguments are carried into the language link: not worth a page each.
        return _render(row, SignUpForm(), left, closed=closed)
    config = current_app.config
    widget = captcha.widget()
    key = (tuple(row), left, closed, str(get_locale()), request.script_root,
           config["ORGANISATION_NAME"], config["TIMEZONE"],
           tuple(sorted(widget.items())) if widget else None)
    pages = current_app.extensions.setdefault(_PAGES, {})
    parts = pages.get(key)
    if parts is None:
        parts = _render_parts(row, closed, left)
        if len(pages) >= MAX_PAGES:
            pages.clear()
        pages[key] = parts
    if len(parts) == 1:  # no token on the page (sign-up closed)
        return parts[0]
    # The same token a rendered form would carry (and the session keeps its half, as before), in
    # every place the page asks for one.
    return str(escape(generate_csrf())).join(parts)


def _render_parts(row: Row, closed: str | None, left: int | None) -> tuple[str, ...]:
    """The page rendered with a placeholder where the template asks for the CSRF token (its
    `csrf_token()`, Flask-WTF's, is given as the placeholder for this render), split around it
    (a one-element tuple when the page carries no token; more parts when it asks more than once)."""
    placeholder = f"csrf-{secrets.token_hex(16)}"
    html = _render(row, SignUpForm(), left, closed=closed, csrf_token=lambda: placeholder)
    parts = tuple(html.split(placeholder))
    if len(parts) == 1 and not closed:
        raise AssertionError("the sign-up page must carry its CSRF token")
    return parts
