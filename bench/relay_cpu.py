"""The worker's CPU per mail through the relay stand-in, in the worker alone.

`python -m bench.relay_cpu [--backend sqlite|postgresql] [--count 300] [--rounds 3]` seeds a seminar
with COUNT confirmed attendees, starts the relay stand-in in its own process (bench/relay_fanout.py's
settings, the quota in MAIL_RATE_LIMIT) and runs the worker's batches in this process: the seminar
is moved ROUNDS times and each fan-out's CPU (this process's, and per thread: the main thread
composing, claiming and recording; the relay sender's threads) is divided by the mails. The
first round includes what a fresh worker does once (compiling statements and templates, checking
each mail skeleton against the email package); the later rounds are the steady state.
Prints JSON (milliseconds of CPU per mail, per round).
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import timedelta

import psutil

from .common import log
from .mail import seed
from .relay_fanout import CAP, DELAY, QUOTA


def _thread_cpu() -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for t in psutil.Process().threads():
        name = names.get(t.id, "other")
        key = "main" if name == "MainThread" else "sender" if name.startswith("relay-") else "other"
        out[key] = out.get(key, 0.0) + t.user_time + t.system_time
    return out


def measure(backend: str, count: int, rounds: int) -> dict:
    from tests.standins.relay import RelayProcess, Rules

    template, seminar_id = seed(backend, count)
    relay = RelayProcess(Rules(delay=DELAY, per_second=QUOTA, max_connections=CAP))
    results = []
    try:
        from seminar import create_app
        from seminar.extensions import db
        from seminar.jobs.runner import new_worker_id, run_batch
        from seminar.models import Seminar
        from seminar.notify.delivery import close_relay_sender
        from seminar.programme.service import update_seminar

        app = create_app({"SQLALCHEMY_DATABASE_URI": template.url, "MAIL_SERVER": "127.0.0.1",
                          "MAIL_PORT": relay.port, "MAIL_MAX_CONNECTIONS": CAP,
                          "MAIL_RATE_LIMIT": f"{QUOTA}/second", "SECRET_KEY": "bench",
                          "RATELIMIT_ENABLED": False, "BASE_URL": "https://seminars.example.nl",
                          "VIDEO_PROVIDER": "jitsi", "LOAD_EXAMPLE_PROGRAMME": False})
        with app.app_context():
            worker = new_worker_id()
            for r in range(rounds):
                relay.reset(Rules(delay=DELAY, per_second=QUOTA, max_connections=CAP))
                start_at = db.session.get(Seminar, seminar_id).start_at + timedelta(days=1)
                update_seminar(seminar_id, start_at=start_at)
                db.session.remove()
                cpu0, threads0, t0 = time.process_time(), _thread_cpu(), time.monotonic()
                while len(relay.summary()["accepted"]) < count and time.monotonic() - t0 < 300:
                    if not run_batch(worker):
                        time.sleep(0.05)
                    db.session.remove()
                cpu, threads, wall = time.process_time() - cpu0, _thread_cpu(), time.monotonic() - t0
                sent = len(relay.summary()["accepted"])
                res = {"round": r + 1, "mails": sent, "wall_s": round(wall, 2),
                       "cpu_ms_per_mail": round(cpu / sent * 1000, 3),
                       **{f"{k}_ms_per_mail": round((threads.get(k, 0) - threads0.get(k, 0)) / sent * 1000, 3)
                          for k in ("main", "sender", "other")}}
                log(f"relay cpu · {backend} · round {r + 1}: {res}")
                results.append(res)
            close_relay_sender(app)
            db.session.remove()
            db.engine.dispose()
    finally:
        relay.close()
        template.drop()
    return {"backend": backend, "count": count, "rounds": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.backend, args.count, args.rounds)))


if __name__ == "__main__":
    main()
