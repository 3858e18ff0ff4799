"""The CPU of making one mail, the plain way and the fast way (notify/fastmime.py), side by side.

`python -m bench.mail_cpu [N]` seeds a seminar with N confirmed attendees in a temporary SQLite
database, moves it, and makes every calendar update (text, HTML, calendar part and .ics) three
ways, each timed with the process's CPU clock:
- compose: the mail's words and links (common to both ways);
- plain: compose, then `build_message` (the email package) and flatten to the bytes smtplib sends;
- fast: compose, then fastmime's bytes (a skeleton per group, checked once against the plain way).
Prints JSON (milliseconds of CPU per mail, the median of three passes).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def measure(count: int = 300) -> dict:
    from sqlalchemy import select

    from seminar import create_app
    from seminar.extensions import db
    from seminar.models import Job
    from seminar.notify import fastmime
    from seminar.notify.mails import build_message, compose
    from seminar.notify.delivery import flatten
    from seminar.jobs.worker import run_due
    from seminar.programme.service import create_seminar, update_seminar
    from seminar.registration.service import SignUpData, confirm, sign_up

    tmp = Path(tempfile.mkdtemp(prefix="seminar-bench-cpu-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'cpu.db'}", "INSTANCE_PATH": str(tmp),
                      "MAIL_DIR": str(tmp / "mail"), "MAIL_SERVER": None, "SECRET_KEY": "bench",
                      "RATELIMIT_ENABLED": False, "BASE_URL": "https://seminars.example.nl"})
    start = (datetime.now(timezone.utc) + timedelta(days=60)).replace(hour=8, minute=0, second=0, microsecond=0)
    with app.app_context():
        db.create_all()
        seminar = create_seminar(title="Meldcode in de praktijk: signaleren en bespreken", start_at=start,
                                 duration_minutes=90, capacity=count, publish=True,
                                 speakers="drs. A. Jansen, Veilig Thuis")
        run_due()
        for i in range(count):
            reg = sign_up(seminar.id, SignUpData(name=f"Deelnemer {i}", email=f"deelnemer{i}@kinderopvang.example",
                                                 organisation="Kinderopvang De Bench", location_type="kdv",
                                                 language="en" if i % 10 == 9 else "nl"))
            confirm(reg.id)
        run_due()
        update_seminar(seminar.id, start_at=start + timedelta(days=1))
        jobs = list(db.session.scalars(select(Job).where(Job.kind == "mail.seminar_changed",
                                                         Job.state == "pending")))

        def plain(job):
            composed = compose(job)
            return flatten(build_message(composed, *composed.to, job.id))[0]

        def fast(job):
            composed = compose(job)
            return fastmime.message_bytes(composed, *composed.to, job.id)[0]

        ways = {"compose": compose, "plain": plain, "fast": fast}
        passes: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(3):
            for name, way in ways.items():
                fastmime.forget()
                cpu = time.process_time()
                for job in jobs:
                    way(job)
                passes[name].append((time.process_time() - cpu) / len(jobs) * 1000)
        size = len(plain(jobs[0]))
    return {"mails": len(jobs), "bytes": size,
            **{f"{name}_ms": statistics.median(values) for name, values in passes.items()}}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 300)))
