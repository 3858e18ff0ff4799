"""Benchmark 4: an announcement to the interest list while people sign up.

N confirmed subscribers (2,000 by default) get the announcement of a seminar
(`flask --app wsgi seminar announce ID`) while a burst of people sign up for it. What is measured
is how long each sign-up's "confirm your address" mail waited: the service's own record of it,
from the job's creation (the sign-up's commit) to its `done_at` (the SMTP server accepted it).
The same burst without an announcement is the baseline, in the same run (A B A B …). The
announcement's own duration (its first job's creation to its last mail accepted) is reported too.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from .common import PY, ROOT, Service, flask, free_port, fresh_database, log, percentile, service_env
from .mail import wait_idle
from .signup import loadgen, start_text

SEED = """
import sys
from datetime import datetime, timezone
from sqlalchemy import insert
from seminar import create_app
from seminar.extensions import db
from seminar.reach.models import Subscriber
app = create_app()
now = datetime.now(timezone.utc)
with app.app_context():
    db.session.execute(insert(Subscriber), [dict(
        email=f"volger{i}@kinderopvang.example", email_normalized=f"volger{i}@kinderopvang.example",
        name=f"Volger {i}", organisation="Kinderopvang De Bench", location_type="kdv",
        language="en" if i % 10 == 9 else "nl", status="active", source="home", nonce=f"n{i}",
        requested_at=now, confirmed_at=now, active_at=now, confirm_mails=1)
        for i in range(int(sys.argv[1]))])
    db.session.commit()
"""


def _moment(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _waits(db, kind: str) -> list[float]:
    rows = db.rows(f"SELECT created_at, done_at FROM job WHERE kind = '{kind}' AND done_at IS NOT NULL")
    return [(_moment(done) - _moment(created)).total_seconds() for created, done in rows]


def burst_errors(scope: dict) -> bool:
    burst = scope.get("burst")
    return bool(burst and burst["errors"])


def run_once(backend: str, sink, subscribers: int, signups: int, announce: bool, tag: str,
             root: Path = ROOT) -> dict:
    with fresh_database(backend) as db, tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
        port = free_port()
        env = service_env(db, port, sink.port)
        service = Service(env, Path(tmp), root)
        service.prepare()
        out = flask(env, "seminar", "create", "--title", "Aangekondigd: de meldcode in de praktijk",
                    "--start", start_text(), "--duration", "90", "--capacity", "100000", "--publish", root=root)
        seminar_id, url = out.strip().splitlines()[-1].split()
        seeded = subprocess.run([PY, "-c", SEED, str(subscribers)], cwd=root, env=env,
                                capture_output=True, text=True, timeout=300)
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding subscribers failed:\n{seeded.stderr[-3000:]}")
        service.start()
        try:
            wait_idle(db)
            sink.reset(keep=False)
            started = time.monotonic()
            if announce:
                flask(env, "seminar", "announce", seminar_id, root=root)
            burst = loadgen(port, urlparse(url).path, signups, 4, f"ann{tag}-")
            wait_idle(db, timeout=600)
            wall = time.monotonic() - started
        finally:
            service.stop()
            if burst_errors(locals()):
                # Kept for a look at what went wrong (the folder goes with the run).
                kept = ROOT / "bench" / "results" / f"announce-{backend}-{tag}-service.log"
                kept.parent.mkdir(exist_ok=True)
                kept.write_bytes((Path(tmp) / "service.log").read_bytes())
                log(f"  sign-up errors: service log kept in {kept.relative_to(ROOT)}")
        confirm = _waits(db, "mail.confirm_address")
        announced = db.rows("SELECT min(created_at), max(done_at), count(*) FROM job "
                            "WHERE kind = 'mail.announcement' AND done_at IS NOT NULL")
    first, last, count = announced[0]
    return {
        "announce": announce, "subscribers": subscribers if announce else 0, "signups": burst["ok"],
        "signup_errors": burst["errors"], "error_samples": burst.get("error_samples", []),
        "statuses": burst.get("statuses", {}), "confirm_mails": len(confirm),
        "confirm_wait_p50_s": percentile(confirm, 50), "confirm_wait_p95_s": percentile(confirm, 95),
        "confirm_wait_max_s": max(confirm) if confirm else None,
        "announcement_mails": count,
        "announcement_s": (_moment(last) - _moment(first)).total_seconds() if count else None,
        "wall_s": wall,
    }


def run(backends: list[str], sink, repeats: int, subscribers: int = 2000, signups: int = 60) -> dict:
    results = {}
    for backend in backends:
        runs = {"baseline": [], "announcing": []}
        for r in range(repeats):
            for variant in ("announcing", "baseline"):
                log(f"announcement · {backend} · repeat {r + 1}/{repeats} · {variant}")
                res = run_once(backend, sink, subscribers, signups, variant == "announcing", f"{r}{variant[0]}")
                log(f"  confirmation mails waited p50 {res['confirm_wait_p50_s']:.2f} s, "
                    f"p95 {res['confirm_wait_p95_s']:.2f} s, max {res['confirm_wait_max_s']:.2f} s "
                    f"({res['confirm_mails']} mails, {res['signup_errors']} errors); announcement: "
                    f"{res['announcement_mails']} mails in {res['announcement_s'] or 0:.1f} s")
                runs[variant].append(res)
        results[backend] = runs
    return results
