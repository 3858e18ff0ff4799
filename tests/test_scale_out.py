"""Scale-out: two gunicorn instances and two workers on one database take a sign-up burst.
Every sign-up is stored once, mailed once, and seats are never over-given."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from seminar.extensions import db
from seminar.models import Registration

from .helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
PEOPLE, SEATS = 60, 25


def start(cmd, env):
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_until_up(base: str, process) -> None:
    with requests.Session() as s:
        for _ in range(600):
            assert process.poll() is None, "instance exited"
            try:
                if s.get(f"{base}/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                threading.Event().wait(0.1)  # readiness poll of a starting process, not a timing assumption
    raise AssertionError(f"{base} did not come up")


def test_two_instances_and_two_workers_take_a_burst(app, make_seminar, smtp, db_url):
    slug = make_seminar(capacity=SEATS).slug  # threads below have no app context
    ports = [free_port(), free_port()]
    env = dict(os.environ, DATABASE_URL=db_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port),
               SECRET_KEY="test-secret", BASE_URL=f"http://127.0.0.1:{ports[0]}", RATELIMIT_ENABLED="0",
               WEB_CONCURRENCY="1", GUNICORN_THREADS="4", WORKER_POLL_SECONDS="0.2",
               WORKER_BATCH_SIZE="10", VIDEO_PROVIDER="jitsi", LOAD_EXAMPLE_PROGRAMME="0")
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    worker = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    processes = [start(gunicorn, dict(env, PORT=str(port))) for port in ports]
    processes += [start(worker, env), start(worker, env)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, process in zip(bases, processes):
            wait_until_up(base, process)

        def sign_up(i):
            base = bases[i % 2]
            with requests.Session() as s:
                page = s.get(f"{base}/seminars/{slug}", timeout=30).text
                response = s.post(f"{base}/seminars/{slug}", allow_redirects=False, timeout=30, data={
                    "csrf_token": CSRF.search(page).group(1), "name": f"Persoon {i}",
                    "email": f"persoon{i}@kinderopvang.example", "organisation": "KDV",
                    "location_type": "kdv", "consent": "y"})
                return response.status_code

        with ThreadPoolExecutor(24) as pool:
            assert Counter(pool.map(sign_up, range(PEOPLE))) == {303: PEOPLE}
        assert smtp.recorder.wait_for(lambda ms: len(ms) >= PEOPLE, 120)

        confirm_links = [re.search(r"(http://\S+/r/confirm/\S+)", m.get_body(("plain",)).get_content()).group(1)
                         for m in list(smtp.messages)]

        def confirm(i_link):
            i, link = i_link
            link = link.replace(bases[0], bases[i % 2])  # half of the people land on the other instance
            with requests.Session() as s:
                page = s.get(link, timeout=30).text
                token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
                return s.post(link, data={"csrf_token": token}, allow_redirects=False, timeout=30).status_code

        with ThreadPoolExecutor(24) as pool:
            assert Counter(pool.map(confirm, enumerate(confirm_links))) == {303: PEOPLE}
        assert smtp.recorder.wait_for(lambda ms: len(ms) >= 2 * PEOPLE, 120)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(30)

    db.session.rollback()
    statuses = Counter(db.session.scalars(db.select(Registration.status)))
    assert statuses == {"confirmed": SEATS, "waitlisted": PEOPLE - SEATS}
    per_person = Counter(m.envelope_to[0] for m in smtp.messages)
    assert set(per_person.values()) == {2}  # one confirmation link and one seat-or-waitlist mail each
    subjects = Counter(m["Subject"].split(":")[0] for m in smtp.messages)
    assert subjects["Je plaats is bevestigd"] == SEATS and subjects["Je staat op de wachtlijst"] == PEOPLE - SEATS
