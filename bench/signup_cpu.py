"""The CPU of one sign-up (GET the page, POST the form) inside one process, with no network.

    python -m bench.signup_cpu [--tree DIR] [--count 400] [--rate-limits] [--database URL]

Creates the app of this checkout (or of `--tree`, an older checkout, to compare) on a temporary
SQLite file (or `--database`, dropped and created), publishes a seminar and runs `count` sign-ups
through the WSGI app with Werkzeug's test client, as the load generator does them (a client of its
own per person: GET, then POST with the page's CSRF token and the session cookie). Timed with the
process's CPU clock, so it hardly moves with the machine's load as `make bench`'s sign-ups/s do;
the test client's own work is included (the same in every tree). `--rate-limits`: the sign-up
limits on (high enough never to refuse), counted in the default storage. Prints JSON: CPU
milliseconds per sign-up, GET and POST apart, each the best of three passes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

CSRF = re.compile(rb'name="csrf_token"[^>]*?value="([^"]+)"')


def measure(count: int, database: str | None, rate_limits: bool) -> dict:
    from werkzeug.test import Client

    from seminar import create_app
    from seminar.extensions import db
    from seminar.programme.service import create_seminar

    tmp = Path(tempfile.mkdtemp(prefix="seminar-bench-signup-cpu-"))
    config = {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database or f"sqlite:///{tmp / 'cpu.db'}",
              "INSTANCE_PATH": str(tmp), "MAIL_DIR": str(tmp / "mail"), "BASE_URL": "http://localhost",
              "MAIL_SERVER": None, "VIDEO_PROVIDER": "jitsi", "RATELIMIT_ENABLED": rate_limits,
              "LOAD_EXAMPLE_PROGRAMME": False, "SESSION_COOKIE_SECURE": False}
    if rate_limits:
        config.update(SIGNUP_RATE_LIMIT="1000000 per minute", SIGNUP_ADDRESS_RATE_LIMIT="1000000 per minute")
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
        seminar = create_seminar(title="Signalen herkennen in de kinderopvang", duration_minutes=90,
                                 start_at=datetime.now(timezone.utc) + timedelta(days=60),
                                 capacity=100000, publish=True)
        path = f"/seminars/{seminar.slug}"
    spent = [0.0, 0.0]

    def sign_up(i: int) -> None:
        client = Client(app)
        t0 = time.process_time()
        page = client.get(path, headers={"Host": "localhost"})
        t1 = time.process_time()
        token = CSRF.search(page.data).group(1).decode()
        answer = client.post(path, headers={"Host": "localhost"}, data={
            "csrf_token": token, "name": f"Bench Persoon {i}", "email": f"p{i}@kinderopvang.example",
            "organisation": "Kinderopvang De Bench", "location_type": "kdv", "question": "", "consent": "y",
            "website": ""})
        t2 = time.process_time()
        if page.status_code != 200 or answer.status_code != 303:
            raise RuntimeError(f"GET {page.status_code}, POST {answer.status_code}")
        spent[0] += t1 - t0
        spent[1] += t2 - t1

    for i in range(50):  # warm-up: templates compiled, statements cached
        sign_up(i)
    passes = []
    for n in range(3):
        spent[:] = [0.0, 0.0]
        for i in range(count):
            sign_up(100000 * (n + 1) + i)
        passes.append((sum(spent) / count * 1000, spent[0] / count * 1000, spent[1] / count * 1000))
    best = min(passes)
    return {"signups": count, "ms_per_signup": round(best[0], 3), "get_ms": round(best[1], 3),
            "post_ms": round(best[2], 3), "passes_ms": [round(p[0], 3) for p in passes]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", help="an older checkout of this repository to measure instead")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--database", help="a database URL to use (its tables are dropped)")
    parser.add_argument("--rate-limits", action="store_true")
    args = parser.parse_args()
    if args.tree:
        tree = str(Path(args.tree).resolve())
        sys.path.insert(0, tree)
        os.chdir(tree)
    import logging

    result = measure(args.count, args.database, args.rate_limits)
    logging.disable(logging.CRITICAL)
    import seminar

    result["tree"] = str(Path(seminar.__file__).resolve().parent.parent)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
