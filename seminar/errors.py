"""Error pages: a clear message in the visitor's language, never a stack trace."""
from __future__ import annotations

from flask import Flask, render_template
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, SecurityError

MESSAGES = {
    400: (_l("Something is wrong with this request"),
          _l("The page could not process what was sent. Please go back and try again.")),
    403: (_l("No access"), _l("You do not have access to this page.")),
    404: (_l("Page not found"),
          _l("This page does not exist (any more). Perhaps the seminar is no longer on the programme.")),
    405: (_l("Not allowed"), _l("This page cannot be used this way.")),
    409: (_l("Not possible"), _l("This is not possible at the moment.")),
    410: (_l("No longer available"), _l("This is no longer available.")),
    413: (_l("Too much data"), _l("What was sent is too large.")),
    429: (_l("Too many attempts"), _l("Please wait a moment and try again.")),
    503: (_l("Temporarily unavailable"),
          _l("The service is briefly unavailable. Please try again in a minute; nothing you "
             "already confirmed is lost.")),
    500: (_l("Something went wrong on our side"),
          _l("Please try again later. Nothing you entered is lost if you received a mail from us.")),
}


UNKNOWN_HOST = ("Onbekend adres: deze site is niet bereikbaar via deze naam.\n"
                "Unknown address: this site is not served under this name.\n")


def render_error(code: int, title=None, message=None):
    default_title, default_message = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    return render_template("error.html", code=code, title=title or default_title,
                           message=message or default_message), code


def bad_link():
    """The one answer to every mailed link that does not work (wrong, incomplete or no longer
    valid): a 404 that says which mail to use instead."""
    return render_error(404, _l("This link does not work"),
                        _l("The link is incomplete or no longer valid. Please use the most recent "
                           "mail you received from us."))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_error(400, _l("The form has expired"),
                            _l("For your safety the form is only valid for a limited time. "
                               "Please reload the page and submit it again."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if isinstance(exc, SecurityError):
            # A Host header that is not ours (TRUSTED_HOSTS): no page, since every link on it
            # would be built for that host.
            return (UNKNOWN_HOST, 400, {"Content-Type": "text/plain; charset=utf-8"})
        return render_error(exc.code or 500)

    @app.errorhandler(DBAPIError)
    def database_unavailable(exc: DBAPIError):
        # The database went away (restart, failover, lock timeout): nothing was stored half,
        # because the transaction rolled back. Say so and let the person retry.
        from .extensions import db

        db.session.rollback()
        if getattr(exc, "connection_invalidated", False) or exc.__class__.__name__ == "OperationalError":
            app.logger.warning("database unavailable: %s", exc.__class__.__name__)
            return render_error(503)
        app.logger.exception("database error")
        return render_error(500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return render_error(500)
