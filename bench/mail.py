"""Benchmark 2: mail fan-out. A seminar with N confirmed attendees is rescheduled with the CLI
(`flask --app wsgi seminar update ID --start …`) while the real service runs; every attendee gets
a calendar update. Floor: raw smtplib sending the same bytes over one connection."""
from __future__ import annotations

import json
import pickle
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .common import (PY, ROOT, Database, Monitor, Service, flask, free_port, fresh_database, log,
                     prepare_schema, service_env)


def seed(backend: str, count: int, extra_env: dict | None = None, pending: bool = False,
         root: Path = ROOT) -> tuple[Database, int]:
    """A database with one published seminar and `count` confirmed attendees (kept as a template)."""
    db = Database(backend)
    env = service_env(db, free_port(), None, **(extra_env or {}))
    prepare_schema(env, root)
    args = [PY, "-m", "bench.seed", str(count)] + (["--pending"] if pending else [])
    out = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        db.drop()
        raise RuntimeError(f"seeding failed:\n{out.stderr[-3000:]}")
    return db, int(out.stdout.strip().splitlines()[-1])


def wait_idle(db: Database, timeout: float = 60.0) -> None:
    """Until the worker has nothing due (what it found at start-up is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        arg = now.strftime("%Y-%m-%d %H:%M:%S.%f") if db.backend == "sqlite" else now
        busy = db.scalar("SELECT count(*) FROM job WHERE (state = 'pending' AND due_at <= ?) OR state = 'claimed'", arg)
        if not busy:
            return
        time.sleep(0.2)
    raise RuntimeError("the worker did not become idle")


def run_candidate(template: Database, seminar_id: int, count: int, sink, workdir: Path,
                  root: Path = ROOT) -> tuple[dict, list]:
    with fresh_database(template.backend, template) as db:
        port = free_port()
        env = service_env(db, port, sink.port)
        service = Service(env, workdir, root)
        service.prepare()
        service.start()
        try:
            wait_idle(db)
            sink.reset(keep=True)
            new_start = (datetime.now() + timedelta(days=61)).strftime("%Y-%m-%d 14:00")
            with Monitor(service.roles) as monitor:
                t_change = time.monotonic()
                flask(env, "seminar", "update", str(seminar_id), "--start", new_start, root=root)
                t_committed = time.monotonic()
                arrived = sink.wait(count, 600)
            stats = sink.stats()
            kept = sink.kept()
        finally:
            service.stop()
        sent_jobs = db.scalar("SELECT count(*) FROM job WHERE kind = 'mail.seminar_changed' AND state = 'done'")
    arrivals = sorted(stats["arrivals"])
    if not arrived or len(arrivals) < count:
        raise RuntimeError(f"only {len(arrivals)} of {count} update mails arrived")
    first, last = arrivals[0], arrivals[-1]
    recipients = stats["recipients"]
    return {
        "mails": len(arrivals), "distinct_recipients": len(set(recipients)), "jobs_done": sent_jobs,
        "mails_per_s": (len(arrivals) - 1) / (last - first),
        "first_to_last_s": last - first,
        "change_to_last_s": last - t_change,          # from the operator's command to the last mail
        "cli_s": t_committed - t_change,              # the command itself (process start, commit)
        "committed_to_last_s": last - t_committed,
        "change_to_first_s": first - t_change,
        "avg_bytes": stats["bytes"] / len(arrivals),
        "peak_rss_mb": dict(monitor.usage.peak_rss_mb),
        "cpu_s": {k: round(v, 2) for k, v in monitor.usage.cpu_seconds.items()},
    }, kept


def run_floor(kept: list, sink, workdir: Path) -> dict:
    path = workdir / "messages.pickle"
    with open(path, "wb") as fh:
        pickle.dump(kept, fh)
    sink.reset()
    cpu0 = sink.cpu_seconds()
    out = subprocess.run([PY, "-m", "bench.smtp_floor", str(sink.port), str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"smtp floor failed: {out.stderr[-2000:]}")
    sender = json.loads(out.stdout)
    if not sink.wait(len(kept), 60):
        raise RuntimeError("floor: not every message arrived")
    sink_cpu = sink.cpu_seconds() - cpu0
    arrivals = sorted(sink.stats()["arrivals"])
    span = arrivals[-1] - arrivals[0]
    return {
        "mails": len(arrivals), "mails_per_s": (len(arrivals) - 1) / span, "first_to_last_s": span,
        "sender_cpu_s": sender["cpu_seconds"], "sender_wall_s": sender["wall"],
        # How busy the SMTP server itself was: near 1.0 means the floor is the server's capacity.
        "sink_cpu_s": sink_cpu, "sink_cpu_per_mail_ms": sink_cpu / len(arrivals) * 1000,
        "sink_busy": sink_cpu / sender["wall"] if sender["wall"] else None,
    }


def run(backends: list[str], sink, repeats: int, count: int) -> dict:
    results = {}
    for backend in backends:
        log(f"mail fan-out · {backend} · seeding {count} confirmed attendees")
        template, seminar_id = seed(backend, count)
        runs = {"candidate": [], "floor": []}
        try:
            with tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
                for r in range(repeats):
                    log(f"mail fan-out · {backend} · repeat {r + 1}/{repeats} · candidate")
                    res, kept = run_candidate(template, seminar_id, count, sink, Path(tmp))
                    log(f"  {res['mails_per_s']:.0f} mails/s first to last, change→last {res['change_to_last_s']:.1f} s "
                        f"(command {res['cli_s']:.1f} s), peak RSS "
                        f"{', '.join(f'{k} {v:.0f} MB' for k, v in res['peak_rss_mb'].items())}")
                    runs["candidate"].append(res)
                    log(f"mail fan-out · {backend} · repeat {r + 1}/{repeats} · floor")
                    floor = run_floor(kept, sink, Path(tmp))
                    log(f"  {floor['mails_per_s']:.0f} mails/s; SMTP server {floor['sink_cpu_per_mail_ms']:.2f} ms CPU/mail, "
                        f"busy {floor['sink_busy']:.0%}")
                    runs["floor"].append(floor)
        finally:
            template.drop()
        results[backend] = runs
    return results
