"""Profile the real service under a benchmark's load with py-spy (sampling, attached from outside).

    python -m bench.profile signup [--backend sqlite|postgresql] [--count 600]
    python -m bench.profile mail   [--backend sqlite|postgresql] [--count 650]
    python -m bench.profile relay  [--backend sqlite|postgresql] [--count 300]   # the worker, relay fan-out

Writes collapsed stacks to bench/results/profile-<what>-<backend>-<role>.txt (open them with
speedscope or flamegraph.pl) and prints the functions with the largest inclusive share.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from .common import RESULTS, ROOT, Service, flask, free_port, fresh_database, log, service_env

PY_SPY = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")


GIL_ONLY = False  # --gil: only samples holding the GIL (CPU spent in Python), not waits


def record(pid: int, out: Path, subprocesses: bool = False, rate: int = 250) -> subprocess.Popen:
    cmd = [PY_SPY, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(out),
           "--nonblocking"]
    if GIL_ONLY:
        cmd.append("--gil")
    if subprocesses:
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(recorder: subprocess.Popen) -> None:
    recorder.send_signal(signal.SIGINT)
    try:
        recorder.wait(30)
    except subprocess.TimeoutExpired:
        recorder.kill()


TOP = 40


def summarise(path: Path, top: int | None = None, idle_markers=("select (selectors", "wait (threading", "sleep")) -> str:
    """Inclusive share per function (each function counted once per sample), idle samples apart."""
    top = top or TOP
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        leaf = frames[-1]
        if any(marker in leaf for marker in idle_markers) or "recv_into" in leaf or "accept" in leaf:
            idle += n
            continue
        total += n
        own[leaf] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{path.name}: {total} busy samples, {idle} idle samples",
             "inclusive  own    function"]
    for frame, n in inclusive.most_common(top):
        lines.append(f"{n / total:7.1%} {own[frame] / total:6.1%}  {frame[:150]}")
    return "\n".join(lines)


def profile_signup(backend: str, count: int, concurrency: int) -> None:
    from .signup import loadgen, start_text
    from .sink import Sink

    sink = Sink()
    try:
        with fresh_database(backend) as db, tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env = service_env(db, port, sink.port)
            service = Service(env, Path(tmp))
            service.prepare()
            out = flask(env, "seminar", "create", "--title", "Profiel", "--start", start_text(),
                        "--duration", "90", "--capacity", "100000", "--publish")
            path = urlparse(out.strip().splitlines()[-1].split()[1]).path
            service.start()
            try:
                loadgen(port, path, 64, concurrency, "warm-")
                roles = service.roles()
                outs = {f"web{i}": RESULTS / f"profile-signup-{backend}-web{i}.txt" for i in range(len(roles["web"]))}
                outs["worker"] = RESULTS / f"profile-signup-{backend}-worker.txt"
                RESULTS.mkdir(parents=True, exist_ok=True)
                pids = roles["web"] + roles["worker"]
                recorders = [record(pid, out) for pid, out in zip(pids, outs.values())]
                time.sleep(1)
                result = loadgen(port, path, count, concurrency, "prof-")
                for r in recorders:
                    stop(r)
                log(f"{result['ok'] / result['wall']:.0f} sign-ups/s while profiled")
            finally:
                service.stop()
        for out in outs.values():
            if out.exists():
                print(summarise(out))
    finally:
        sink.close()


def profile_mail(backend: str, count: int) -> None:
    from .mail import seed, wait_idle
    from .sink import Sink

    sink = Sink()
    template, seminar_id = seed(backend, count)
    try:
        with fresh_database(backend, template) as db, tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env = service_env(db, port, sink.port)
            service = Service(env, Path(tmp))
            service.start()
            try:
                wait_idle(db)
                sink.reset()
                RESULTS.mkdir(parents=True, exist_ok=True)
                out = RESULTS / f"profile-mail-{backend}-worker.txt"
                recorder = record(service.roles()["worker"][0], out)
                time.sleep(1)
                new_start = (datetime.now() + timedelta(days=61)).strftime("%Y-%m-%d 14:00")
                cli = RESULTS / f"profile-mail-{backend}-cli.txt"
                subprocess.run([PY_SPY, "record", "--rate", "250", "--format", "raw", "--output", str(cli), "--",
                                __import__("sys").executable, "-m", "flask", "--app", "wsgi", "seminar", "update",
                                str(seminar_id), "--start", new_start], cwd=ROOT, env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                sink.wait(count, 600)
                stop(recorder)
            finally:
                service.stop()
        print(summarise(out))
        print(summarise(cli))
    finally:
        template.drop()
        sink.close()


def profile_relay(backend: str, count: int) -> None:
    """The worker while a seminar's updates go through the relay stand-in (bench/relay_fanout.py's
    settings, the quota in MAIL_RATE_LIMIT)."""
    from tests.standins.relay import RelayProcess, Rules

    from .mail import seed, wait_idle
    from .relay_fanout import CAP, DELAY, QUOTA

    relay = RelayProcess(Rules(delay=DELAY, per_second=QUOTA, max_connections=CAP))
    template, seminar_id = seed(backend, count)
    try:
        with fresh_database(backend, template) as db, tempfile.TemporaryDirectory() as tmp:
            env = service_env(db, free_port(), relay.port, MAIL_MAX_CONNECTIONS=CAP,
                              MAIL_RATE_LIMIT=f"{QUOTA}/second")
            service = Service(env, Path(tmp))
            service.prepare()
            service.start()
            try:
                wait_idle(db)
                relay.reset(Rules(delay=DELAY, per_second=QUOTA, max_connections=CAP))
                RESULTS.mkdir(parents=True, exist_ok=True)
                out = RESULTS / f"profile-relay-{backend}-worker.txt"
                recorder = record(service.roles()["worker"][0], out)
                time.sleep(1)
                new_start = (datetime.now() + timedelta(days=61)).strftime("%Y-%m-%d 14:00")
                flask(env, "seminar", "update", str(seminar_id), "--start", new_start)
                relay.wait(count, 600)
                stop(recorder)
            finally:
                service.stop()
        print(summarise(out))
    finally:
        template.drop()
        relay.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["signup", "mail", "relay"])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--gil", action="store_true", help="only samples that hold the GIL (where the CPU goes)")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    global GIL_ONLY, TOP
    GIL_ONLY, TOP = args.gil, args.top
    if args.what == "signup":
        profile_signup(args.backend, args.count or 600, args.concurrency)
    elif args.what == "relay":
        profile_relay(args.backend, args.count or 300)
    else:
        profile_mail(args.backend, args.count or 650)


if __name__ == "__main__":
    main()
