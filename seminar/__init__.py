"""The seminar sign-up service: application factory."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask, has_request_context, request, session
from werkzeug.exceptions import RequestEntityTooLarge

from . import database
from .config import load_config, trusted_hosts
from .extensions import babel, csrf, db, limiter, login_manager, mail

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def select_locale() -> str:
    """Dutch first: the visitor's explicit choice (kept in the session), else Dutch."""
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return languages[0]
    chosen = request.args.get("lang")
    if chosen in languages:
        session["lang"] = chosen
        return chosen
    return session.get("lang") if session.get("lang") in languages else languages[0]


def check_mail_relay_settings(config) -> None:
    """A relay setting that can't be read stops the start with a message saying which and why,
    rather than a worker that sends too fast or not at all."""
    from .notify.relay.quota import parse_quota

    parse_quota(config.get("MAIL_RATE_LIMIT"))
    if int(config.get("MAIL_MAX_CONNECTIONS") or 0) < 1:
        raise ValueError("MAIL_MAX_CONNECTIONS must be 1 or more")


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    instance = Path(test_config["INSTANCE_PATH"]) if test_config and "INSTANCE_PATH" in test_config else Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.instance_path = str(instance)
    app.config.update(load_config(instance))
    if test_config:
        app.config.update(test_config)
    check_mail_relay_settings(app.config)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TIMEZONE"])
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql://"):
        # Accept the common spelling and use the psycopg 3 driver we install.
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + app.config[
            "SQLALCHEMY_DATABASE_URI"
        ].removeprefix("postgresql://")
    # Pooled connections that sat idle are tested when taken out (database.IDLE_PING_SECONDS);
    # testing every one (pool_pre_ping) would cost each request a round trip to the server.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": False})
    # A database error's message never carries the statement's values (names, addresses,
    # questions): it is logged, and printed by the CLI.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"],
                                                   hide_parameters=True)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from .i18n import compile_catalogues

    compile_catalogues(Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]))

    if not (test_config and "TRUSTED_HOSTS" in test_config):
        app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config["BASE_URL"], os.environ.get("TRUSTED_HOSTS"))
    # Ids in URLs are at most what the database holds (64 bits): a longer one is a 404, not an
    # overflow in the database driver.
    app.url_map.converters["int"] = database.DatabaseId

    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    with app.app_context():
        database.init_engine(db.engine)
    mail.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    # (importing portal also puts its views on the portal's blueprint, registered below)
    from .attendance.portal import allow_uploads, too_large

    app.before_request(allow_uploads)  # before CSRF's check, which reads the (large) form
    app.register_error_handler(RequestEntityTooLarge, too_large)
    csrf.init_app(app)
    login_manager.init_app(app)
    from . import ratelimits  # noqa: F401  (registers seminar-db://, the default storage)

    limiter.init_app(app)
    from .accounts import load_user

    login_manager.user_loader(load_user)

    from . import security, templating
    from .cli import register_cli
    from .errors import register_error_handlers
    from .jobs import kinds
    from .manage import admin as manage_admin, auth as manage_auth, routes as manage_routes  # noqa: F401
    from .attendance.routes import bp as after_bp
    from .public.routes import bp as public_bp
    from .reach import mails as _reach_mails  # noqa: F401  (the list's mails and hooks)
    from .reach.portal import bp as reach_portal_bp
    from .reach.routes import bp as reach_bp
    from .registration.routes import bp as registration_bp
    from .webhooks.routes import bp as webhooks_bp

    templating.init_app(app)
    security.init_app(app)
    register_error_handlers(app)
    app.register_blueprint(public_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(manage_routes.bp)  # the portal: manage_admin's and manage_auth's views too
    app.register_blueprint(after_bp)
    app.register_blueprint(reach_bp)
    app.register_blueprint(reach_portal_bp)
    register_cli(app)
    kinds.bind()  # every job kind's handlers, looked up now: a wrong name stops the app here
    return app
