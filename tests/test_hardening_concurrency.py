"""Issue 14, finding 16: on SQLite a transaction that reads and then writes failed with "database
is locked" when another writer committed in between. Every write path takes the write lock up
front: CLI and portal writes made during a burst of sign-ups all succeed, and no error prints a
password hash."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from seminar.extensions import db
from seminar.models import Registration, User

from .helpers import Person
from .portal_helpers import Staff, make_user

ROOT = Path(__file__).resolve().parent.parent


def cli_env(db_url: str, tmp_path: Path) -> dict:
    return dict(os.environ, DATABASE_URL=db_url, SECRET_KEY="test-secret", RATELIMIT_ENABLED="0",
                LOAD_EXAMPLE_PROGRAMME="0", MAIL_SERVER="", BASE_URL="http://seminar.test")


def test_cli_and_portal_writes_during_a_sign_up_burst_all_succeed(app, db_url, tmp_path, make_seminar):
    seminar = SimpleNamespace(slug=make_seminar(capacity=1000).slug)  # for the threads
    make_user("org@bmk.example")
    stop = threading.Event()
    problems: list[str] = []
    signed_up = []

    def sign_ups(n: int) -> None:
        client = app.test_client()
        i = 0
        while not stop.is_set():
            i += 1
            person = Person(client, name=f"Deelnemer {n} {i}", email=f"d{n}-{i}@kinderopvang.example")
            response = person.sign_up(seminar)
            if response.status_code != 303:
                problems.append(f"sign-up {response.status_code}")
            signed_up.append(1)

    def portal() -> None:
        staff = Staff(app.test_client(), "org@bmk.example").logged_in()
        i = 0
        while not stop.is_set():
            i += 1
            response = staff.submit("/manage/users/new", {
                "email": f"host{i}@bmk.example", "name": f"Host {i}", "role": "host",
                "active": "y"})
            if response.status_code != 303:
                problems.append(f"portal {response.status_code}")

    threads = [threading.Thread(target=sign_ups, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=portal))
    for thread in threads:
        thread.start()
    outputs = []
    try:
        for i in range(4):
            result = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "wsgi", "user", "create",
                 "--email", f"cli{i}@bmk.example", "--role", "host", "--password", "een lang wachtwoord"],
                cwd=ROOT, env=cli_env(db_url, tmp_path), capture_output=True, text=True, timeout=120)
            outputs.append(result.stdout + result.stderr)
            if result.returncode != 0:
                problems.append(f"cli exit {result.returncode}")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not any("scrypt:" in out or "$" in out for out in outputs), outputs
    assert problems == [], (problems, outputs)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(User.id)).where(User.email.like("cli%"))) == 4
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == len(signed_up) > 0
