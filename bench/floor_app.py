"""The sign-up floor: a bare Flask app that renders a form and inserts one row per POST.

Served by gunicorn with the same gunicorn.conf.py (same processes and threads) against the same
kind of database as the service, with the same SQLite settings (WAL, synchronous=NORMAL,
busy_timeout). No sessions, no CSRF check, no validation, no outbox: what any sign-up form costs
at the least on this machine. The page carries a hidden token and the same fields as the real
form, so the load generator does exactly the same work against both.
"""
from __future__ import annotations

import os
import secrets
import sqlite3
from datetime import datetime, timezone

from flask import Flask, redirect, render_template_string, request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, event, insert

metadata = MetaData()
signup = Table(
    "floor_signup", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(120)), Column("email", String(254)), Column("organisation", String(200)),
    Column("location_type", String(40)), Column("created_at", DateTime),
)

FORM = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><main><h1>{{ title }}</h1>
<form method="post" action="{{ request.path }}">
  <input id="csrf_token" name="csrf_token" type="hidden" value="{{ token }}">
  {% for name, label in fields %}<p><label for="{{ name }}">{{ label }}</label>
  <input id="{{ name }}" name="{{ name }}" type="text" required></p>{% endfor %}
  <p><label><input type="checkbox" name="consent" value="y"> Akkoord</label></p>
  <button type="submit">Aanmelden</button>
</form></main></body></html>"""

FIELDS = [("name", "Naam"), ("email", "E-mailadres"), ("organisation", "Organisatie"),
          ("location_type", "Soort locatie"), ("question", "Vraag")]


def make_engine(url: str):
    engine = create_engine(url)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, record):
            if isinstance(dbapi_connection, sqlite3.Connection):
                cur = dbapi_connection.cursor()
                cur.execute("PRAGMA busy_timeout = 30000")
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.close()
    return engine


def create_app(url: str) -> Flask:
    app = Flask(__name__)
    engine = make_engine(url)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.route("/form", methods=["GET", "POST"])
    def form():
        if request.method == "POST":
            f = request.form
            with engine.begin() as conn:
                conn.execute(insert(signup).values(
                    name=f.get("name"), email=f.get("email"), organisation=f.get("organisation"),
                    location_type=f.get("location_type"), created_at=datetime.now(timezone.utc)))
            return redirect("/form/done", code=303)
        return render_template_string(FORM, title="Seminar", fields=FIELDS, token=secrets.token_urlsafe(32))

    return app


def create_table(url: str) -> None:
    metadata.create_all(make_engine(url))


if os.environ.get("FLOOR_DATABASE_URL"):
    app = create_app(os.environ["FLOOR_DATABASE_URL"])
