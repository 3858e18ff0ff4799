"""`make bench` (= `python -m bench`): every benchmark, the table, docs/BENCHMARKS.md.

    python -m bench                 # full run (about 8 minutes on 2 cores); writes docs/BENCHMARKS.md
    python -m bench --quick         # one repeat, smaller bursts; prints the table only
    python -m bench --only signup --backends sqlite --repeats 5
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from datetime import datetime

from . import report
from .common import ROOT, SCHEMA_NOTES, log, machine, pg_available, save_json


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one repeat and smaller loads; does not write the doc")
    p.add_argument("--only", default="signup,relay,platform,announce,mailcpu",
                   help="comma list of signup, relay, platform, announce, mailcpu (and mail: the retired loopback fan-out)")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma list of sqlite, postgresql")
    p.add_argument("--repeats", type=int, default=None, help="alternated repeats per benchmark (default 3; quick 1)")
    p.add_argument("--signups", type=int, default=None, help="sign-ups per burst (default 600; quick 300)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients in a burst (24–50)")
    p.add_argument("--attendees", type=int, default=650, help="confirmed attendees in the mail fan-out")
    p.add_argument("--subscribers", type=int, default=2000, help="interest-list addresses announced to")
    p.add_argument("--relay-attendees", type=int, default=300, help="confirmed attendees in the relay fan-out")
    p.add_argument("--zoom-attendees", type=int, default=None, help="attendees in the platform fan-out (default 330)")
    p.add_argument("--platform-rounds", type=int, default=None,
                   help="rounds of the platform fan-out, judged on their median (default 5; quick 3)")
    p.add_argument("--platform-backends", default="sqlite",
                   help="databases for the platform fan-out (its limit is the platform; default sqlite)")
    p.add_argument("--doc", default=None, help="write the results into this file (default docs/BENCHMARKS.md; "
                                               "quick runs write nothing unless given)")
    p.add_argument("--label", default=None, help="name of the JSON file under bench/results/")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    signups = args.signups or (300 if args.quick else 600)
    zoom_n = args.zoom_attendees or (330 if not args.quick else 300)
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgresql" in backends and not pg_available():
        log("PostgreSQL is not reachable (BENCH_PG_ADMIN); running on SQLite only")
        backends = [b for b in backends if b != "postgresql"]
    started = time.monotonic()
    info = machine()
    log(f"machine: {info}")
    results: dict = {}
    failures: list[str] = []

    from .sink import Sink

    sink = Sink()
    try:
        if "signup" in only:
            from . import signup

            try:
                results["signup"] = signup.run(backends, sink, repeats, signups, args.concurrency,
                                               warmup=2 * args.concurrency)
            except Exception:
                failures.append("signup: " + traceback.format_exc())
                log(failures[-1])
        if "mail" in only:
            from . import mail

            try:
                results["mail"] = mail.run(backends, sink, repeats, args.attendees)
            except Exception:
                failures.append("mail: " + traceback.format_exc())
                log(failures[-1])
        if "announce" in only:
            from . import announce

            try:
                results["announce"] = announce.run(backends, sink, repeats, args.subscribers,
                                                   signups=30 if args.quick else 60)
            except Exception:
                failures.append("announce: " + traceback.format_exc())
                log(failures[-1])
        if "relay" in only:
            from . import relay_fanout

            try:
                results["relay"] = relay_fanout.run(backends, repeats, args.relay_attendees)
            except Exception:
                failures.append("relay: " + traceback.format_exc())
                log(failures[-1])
        if "mailcpu" in only:
            import json
            import subprocess

            from .common import PY

            out = subprocess.run([PY, "-m", "bench.mail_cpu"], cwd=ROOT, capture_output=True, text=True, timeout=900)
            if out.returncode == 0:
                results["mailcpu"] = json.loads(out.stdout.strip().splitlines()[-1])
            else:
                failures.append("mailcpu: " + out.stderr[-2000:])
                log(failures[-1])
        if "platform" in only:
            from . import platform_fanout

            try:
                ready, why = platform_fanout.ready()
                platform_backends = [b for b in args.platform_backends.split(",") if b in backends]
                if ready:
                    rounds = args.platform_rounds or (3 if args.quick else 5)
                    results["platform"] = platform_fanout.run(platform_backends, rounds, zoom_n)
                else:
                    failures.append(f"platform: not run: {why}")
                    log(failures[-1])
            except Exception:
                failures.append("platform: " + traceback.format_exc())
                log(failures[-1])
    finally:
        sink.close()

    duration = (time.monotonic() - started) / 60
    command = "make bench" + (f" BENCH_ARGS={shlex.quote(' '.join(argv or sys.argv[1:]))}" if (argv or sys.argv[1:]) else "")
    meta = {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": info, "repeats": repeats,
        "mode": "quick" if args.quick else "full", "duration_min": duration, "command": command,
        "schema": sorted(SCHEMA_NOTES),
        "settings": (f"{signups} measured sign-ups per burst after {2 * args.concurrency} warm-up sign-ups, "
                     f"{args.concurrency} concurrent clients; {args.relay_attendees} attendees in the relay fan-out "
                     f"(relay stand-in in its own process: 25 ms before every reply, 20 messages/s, "
                     f"3 connections; MAIL_MAX_CONNECTIONS=3); "
                     f"{zoom_n} in the platform fan-out ({args.platform_rounds or (3 if args.quick else 5)} rounds; Zoom "
                     f"stand-in: 1 registrant call/s, 5 % of calls failing; stragglers waited for up to {120} s); gunicorn.conf.py and every service setting at its "
                     "default (RATELIMIT_ENABLED=0, SECRET_KEY set, LOAD_EXAMPLE_PROGRAMME=0, MAIL_SERVER = the "
                     "local aiosmtpd server in its own process)."),
        "failures": failures,
    }
    print()
    print(report.text_table(results))
    print()
    print(report.details(results))
    for failure in failures:
        print(f"\nNOT RUN / FAILED: {failure}")
    label = args.label or ("quick" if args.quick else "full") + datetime.now().strftime("-%Y%m%d-%H%M%S")
    path = save_json(f"{label}.json", {"meta": meta, "results": results})
    log(f"raw figures: {path.relative_to(ROOT)}; {duration:.1f} minutes")
    doc = args.doc or (None if args.quick else "docs/BENCHMARKS.md")
    if doc:
        report.write_doc(ROOT / doc, results, meta)
        log(f"wrote {doc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
