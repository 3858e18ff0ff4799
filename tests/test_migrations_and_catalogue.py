"""The committed migrations build exactly the schema the models describe, and every string a
person can see has a Dutch translation."""
from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask_migrate import upgrade
from sqlalchemy import text as sql

from seminar.extensions import db, init_migrate

from .helpers import make_app

ROOT = Path(__file__).resolve().parent.parent


def test_migrations_match_the_models(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    init_migrate(app)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        db.engine.dispose()
    assert diff == [], "models changed without a migration: run `flask --app wsgi db migrate`"


def extracted_messages() -> dict[str, tuple[str, int]]:
    with open(ROOT / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    found = {}
    for filename, lineno, message, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        if "/.venv/" in f"/{filename}" or filename.startswith(("tests", ".venv", "node_modules")):
            continue
        key = message if isinstance(message, str) else message[0]
        found[key] = (filename, lineno)
    return found


def test_every_string_has_a_dutch_translation():
    with open(ROOT / "translations/nl/LC_MESSAGES/messages.po", "rb") as fh:
        catalogue = read_po(fh)
    missing = []
    for msgid, (filename, lineno) in extracted_messages().items():
        entry = catalogue.get(msgid)
        strings = [] if entry is None else ([entry.string] if isinstance(entry.string, str) else list(entry.string))
        if entry is None or entry.fuzzy or not strings or not all(strings):
            missing.append(f"{filename}:{lineno}: {msgid!r}")
    assert missing == [], "untranslated (run `make extract-messages`, then translate):\n" + "\n".join(missing)


def test_translations_keep_their_placeholders():
    with open(ROOT / "translations/nl/LC_MESSAGES/messages.po", "rb") as fh:
        catalogue = read_po(fh)
    placeholder = re.compile(r"%\(\w+\)[sd]")
    wrong = []
    for entry in catalogue:
        if not entry.id or not entry.string:
            continue
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        wanted = set(placeholder.findall(ids[-1])) | set(placeholder.findall(ids[0]))
        for text in strings:
            if not set(placeholder.findall(text)) <= wanted:
                wrong.append(entry.id)
    assert wrong == []


def test_the_job_runtime_migration_keeps_todays_rows(db_url, tmp_path):
    """Jobs queued before stable keys keep running: each key becomes its intent's name (two jobs
    still to run that would share one: the older keeps it), lanes follow the kinds."""
    app = make_app(db_url, tmp_path)
    init_migrate(app)
    with app.app_context():
        upgrade(revision="c1f70b119836")
        with db.engine.begin() as conn:
            conn.execute(sql(
                "INSERT INTO seminar (id, slug, title, description, speakers, start_at, duration_minutes, "
                "capacity, state, reminder_hours, digest_hours, room_name, ical_sequence, created_at, "
                "updated_at) VALUES (1, 's', 'T', '', '', '2027-01-01 10:00:00', 60, 10, 'published', "
                "'24', '24', 'r', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
            rows = [("mail.seat_confirmed", "seat-mail:5", "done"), ("mail.seminar_changed", "changed:5:1", "done"),
                    ("mail.seminar_changed", "changed:5:2", "pending"), ("mail.seminar_changed", "changed:5:3", "pending"),
                    ("video.add_attendee", "add:5:after:99", "claimed"), ("mail.reminder", "reminder:5:24:20270101T1000", "pending"),
                    ("video.remove_attendee", "purge-remove:6", "pending"), ("mail.confirm_address", "confirm:5:2", "done"),
                    ("mail.host_digest", None, "failed")]
            for n, (kind, key, state) in enumerate(rows, 1):
                conn.execute(sql(
                    "INSERT INTO job (id, kind, key, seminar_id, payload, state, due_at, attempts, created_at) "
                    "VALUES (:id, :kind, :key, 1, '{}', :state, '2026-01-01 00:00:00', 0, '2026-01-01 00:00:00')"),
                    dict(id=n, kind=kind, key=key, state=state))
        upgrade()
        with db.engine.connect() as conn:
            after = conn.execute(sql("SELECT id, key, state, lane FROM job ORDER BY id")).all()
        db.engine.dispose()
    assert [tuple(row) for row in after] == [
        (1, "seat-mail:5", "done", "interactive"), (2, "changed:5", "done", "bulk"),
        (3, "changed:5", "pending", "bulk"), (4, None, "pending", "bulk"),
        (5, "add:5", "claimed", "interactive"), (6, "reminder:5:24", "pending", "bulk"),
        (7, "remove:6", "pending", "bulk"), (8, "confirm:5", "done", "interactive"),
        (9, None, "failed", "bulk")]
