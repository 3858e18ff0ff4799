"""`flask --app wsgi serve`: gunicorn and the worker side by side, as `make run` starts them.

Both are supervised: when one of them ends without being asked to (a crash, the kernel's OOM
killer sending SIGKILL), it is started again after a pause that doubles with each quick death
(`SERVE_RESTART_BACKOFF` seconds at first, at most 30), and a line says so. A process that keeps
dying at start (`GIVE_UP_AFTER` times in a row within `QUICK_DEATH` seconds of starting) means
something is wrong that a restart will not fix: then both are stopped and `serve` exits 1, so
`make run` and systemd see a failure, never a clean stop.

Ctrl-C or SIGTERM stops both and exits 0.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent

QUICK_DEATH = 10.0     # a process that ends within this many seconds of starting died "at start"
GIVE_UP_AFTER = 5      # that many such deaths in a row: give up
MAX_BACKOFF = 30.0
STOP_TIMEOUT = 30.0    # seconds a child gets to stop after SIGTERM before it is killed
TICK = 0.2


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    starts: list[int] = field(default_factory=list)  # pids, for the log and the tests


def describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Supervisor:
    def __init__(self, children: list[Child], env: dict, *, backoff: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] | None = None):
        self.children, self.env, self.backoff, self.clock = children, env, backoff, clock
        self.log = log or (lambda line: print(f"serve: {line}", file=sys.stderr, flush=True))
        self.stopping = threading.Event()

    def start(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv, cwd=ROOT, env=self.env)
        child.started_at, child.restart_at = self.clock(), None
        child.starts.append(child.process.pid)
        verb = "started" if len(child.starts) == 1 else "restarted"
        self.log(f"{child.name} {verb} (pid {child.process.pid})")

    def stop(self, signum=None, frame=None) -> None:
        self.stopping.set()

    def _died(self, child: Child, code: int) -> int | None:
        """Note a death; the exit status to give up with, or None to restart later."""
        now = self.clock()
        child.quick_deaths = child.quick_deaths + 1 if now - child.started_at < QUICK_DEATH else 1
        child.process = None
        if child.quick_deaths >= GIVE_UP_AFTER:
            self.log(f"{child.name} {describe(code)}; it died {child.quick_deaths} times in a row "
                     f"within {QUICK_DEATH:.0f} s of starting: giving up")
            return 1
        delay = min(MAX_BACKOFF, self.backoff * 2 ** (child.quick_deaths - 1))
        child.restart_at = now + delay
        self.log(f"{child.name} {describe(code)}; restarting in {delay:g} s")
        return None

    def run(self) -> int:
        for child in self.children:
            self.start(child)
        status = 0
        while not self.stopping.is_set():
            for child in self.children:
                if child.process is not None:
                    code = child.process.poll()
                    if code is not None and not self.stopping.is_set():
                        given_up = self._died(child, code)
                        if given_up is not None:
                            status = given_up
                            self.stopping.set()
                            break
                elif child.restart_at is not None and self.clock() >= child.restart_at:
                    self.start(child)
            self.stopping.wait(TICK)
        self._stop_children()
        return status

    def _stop_children(self) -> None:
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_forever(port: int | None = None) -> int:
    env = dict(os.environ)
    if port:
        env["PORT"] = str(port)
    env.setdefault("PORT", "8000")
    python = sys.executable
    children = [
        Child("web (gunicorn)", [python, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]),
        Child("worker", [python, "-m", "flask", "--app", "wsgi", "worker"]),
    ]
    supervisor = Supervisor(children, env, backoff=float(env.get("SERVE_RESTART_BACKOFF") or 1.0))
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    print(f"Serving on http://127.0.0.1:{env['PORT']} (gunicorn) with the worker beside it; "
          "Ctrl-C stops both.", flush=True)
    return supervisor.run()
