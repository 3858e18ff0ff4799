"""Benchmark 2: mail through a far-away, limited relay.

The relay stand-in of the tests (tests/standins/relay.py) runs in a process of its own with a
delay before every reply (a network round trip), a per-second quota answered with 454 at the end
of DATA, and a cap on connections answered with 432. With the real service running
(`flask --app wsgi serve`, MAIL_MAX_CONNECTIONS at the cap), a seminar with N confirmed attendees
is moved with the CLI; every attendee gets a calendar update. Measured:
- first to last update accepted by the relay, against the bound N ÷ quota: with the quota in
  MAIL_RATE_LIMIT, and without it (the service finds the pace from the relay's 454s);
- nothing lost, nothing sent twice, the connection cap never exceeded;
- a person who signs up while the updates drain: from their sign-up to their confirmation mail
  at the relay;
- the worker's CPU per mail.
"""
from __future__ import annotations

import http.client
import re
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from .common import Monitor, Service, flask, free_port, fresh_database, log, service_env
from .mail import seed, wait_idle

CSRF = re.compile(rb'name="csrf_token"[^>]*?value="([^"]+)"')
DELAY = 0.025        # seconds before every reply of the relay
QUOTA = 20           # messages per second it accepts
CAP = 3              # connections it accepts at once (Exchange Online's)
PERSON = "wachtend-persoon@kinderopvang.example"
PAUSE = 0.1          # seconds: a gap between accepted updates this long is a pause (about 2× the pace)


def _sign_up(port: int, slug: str, tries: int = 3) -> float:
    """A person signs up through the site (GET the form, POST it); returns when the POST answered."""
    for attempt in range(tries):
        try:
            return _sign_up_once(port, slug)
        except RuntimeError as exc:
            log(f"  the person's sign-up failed ({exc}); again")
            if attempt == tries - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _sign_up_once(port: int, slug: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/seminars/{slug}")
        page = conn.getresponse()
        body = page.read()
        found = CSRF.search(body)
        if found is None:
            raise RuntimeError(f"GET answered {page.status} without a form: {body[:200]!r}")
        token = found.group(1).decode()
        cookie = "; ".join(h.split(";", 1)[0] for h in page.headers.get_all("Set-Cookie") or [])
        form = {"csrf_token": token, "name": "Wachtend Persoon", "email": PERSON,
                "organisation": "Kinderopvang De Bench", "location_type": "kdv", "question": "",
                "consent": "y", "website": ""}
        conn.request("POST", f"/seminars/{slug}", body=urlencode(form),
                     headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        answer = conn.getresponse()
        answer.read()
        if answer.status != 303:
            raise RuntimeError(f"sign-up answered {answer.status}")
        return time.monotonic()
    finally:
        conn.close()


def _pauses(times: list[float]) -> dict:
    """Where the relay waited on us: gaps between accepted updates longer than PAUSE (the pace is a
    start every 52.5 ms at 20/s less the 5 % margin), how many, and the time they add over the pace."""
    pace = 1.05 / QUOTA
    gaps = [b - a for a, b in zip(times, times[1:])]
    long = sorted((g for g in gaps if g > PAUSE), reverse=True)
    return {"count": len(long), "added_s": sum(g - pace for g in long),
            "longest_ms": [round(g * 1000) for g in long[:6]]}


def _slug(db, seminar_id: int) -> str:
    return db.scalar("SELECT slug FROM seminar WHERE id = ?", seminar_id)


def run_once(template, seminar_id: int, count: int, relay, workdir: Path, quota_known: bool) -> dict:
    from tests.standins.relay import Rules

    with fresh_database(template.backend, template) as db:
        port = free_port()
        extra = {"MAIL_MAX_CONNECTIONS": CAP}
        if quota_known:
            extra["MAIL_RATE_LIMIT"] = f"{QUOTA}/second"
        env = service_env(db, port, relay.port, **extra)
        service = Service(env, workdir)
        service.prepare()
        slug = _slug(db, seminar_id)
        service.start()
        try:
            wait_idle(db)
            relay.reset(Rules(delay=DELAY, per_second=QUOTA, max_connections=CAP))
            new_start = (datetime.now() + timedelta(days=61)).strftime("%Y-%m-%d 14:00")
            signed_up: list[float] = []
            with Monitor(service.roles) as monitor:
                t_change = time.monotonic()
                flask(env, "seminar", "update", str(seminar_id), "--start", new_start)
                # While the updates drain, a person signs up and waits for their confirmation.
                person = threading.Timer(2.0, lambda: signed_up.append(_sign_up(port, slug)))
                person.start()
                arrived = relay.wait(count, 600)
                person.join()
                if signed_up:  # and their confirmation too
                    arrived = relay.wait(count + 1, 60)
            summary = relay.summary()
            if not arrived:
                states = db.rows("SELECT kind, state, count(*), max(last_error) FROM job "
                                 "WHERE state <> 'done' GROUP BY kind, state")
                log(f"  not all mails arrived; jobs not done: {states}; worker log:\n{service.process.tail(40)}")
        finally:
            service.stop()
    accepted = summary["accepted"]
    updates = [a for a in accepted if a[1] and a[1][0] != PERSON]
    mine = [a for a in accepted if a[1] and a[1][0] == PERSON]
    if not arrived:
        raise RuntimeError(f"only {len(accepted)} of {count + bool(signed_up)} mails reached the relay")
    times = sorted(a[2] for a in updates)
    recipients = [a[1][0] for a in updates]
    span = times[-1] - times[0]
    return {
        "quota_known": quota_known, "attendees": count, "accepted": len(updates),
        "distinct": len(set(recipients)), "lost": count - len(set(recipients)),
        "twice": len(recipients) - len(set(recipients)),
        "first_to_last_s": span, "bound_s": count / QUOTA, "ratio": span / (count / QUOTA),
        "change_to_last_s": times[-1] - t_change,
        "pauses": _pauses(times),
        "person_s": (mine[0][2] - signed_up[0]) if mine and signed_up else None,
        "peak_connections": summary["peak"], "answers": summary["answers"],
        "worker_cpu_per_mail_ms": monitor.usage.cpu_seconds.get("worker", 0.0) / (len(accepted) or 1) * 1000,
        "peak_rss_mb": dict(monitor.usage.peak_rss_mb),
    }


def run(backends: list[str], repeats: int, count: int) -> dict:
    from tests.standins.relay import RelayProcess, Rules

    results = {}
    relay = RelayProcess(Rules(delay=DELAY, per_second=QUOTA, max_connections=CAP))
    try:
        for backend in backends:
            log(f"relay fan-out · {backend} · seeding {count} confirmed attendees")
            template, seminar_id = seed(backend, count)
            runs = {"known": [], "unknown": []}
            try:
                with tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
                    for r in range(repeats):
                        for key, known in (("known", True), ("unknown", False)):
                            log(f"relay fan-out · {backend} · repeat {r + 1}/{repeats} · quota "
                                f"{'in the settings' if known else 'not set'}")
                            res = run_once(template, seminar_id, count, relay, Path(tmp), known)
                            log(f"  first→last {res['first_to_last_s']:.1f} s (bound {res['bound_s']:.1f} s, "
                                f"{res['ratio']:.2f}×); person's mail {res['person_s']:.1f} s; lost {res['lost']}, "
                                f"twice {res['twice']}; peak {res['peak_connections']} connections; answers "
                                f"{res['answers']}; worker {res['worker_cpu_per_mail_ms']:.2f} ms CPU/mail; pauses "
                                f"{res['pauses']['count']} adding {res['pauses']['added_s']:.2f} s, longest "
                                f"{res['pauses']['longest_ms']} ms")
                            runs[key].append(res)
            finally:
                template.drop()
            results[backend] = runs
    finally:
        relay.close()
    return results
