"""Issue 14 with real processes: 10 rate limits count across processes (the database by default,
Redis when configured), 13 no HSTS for a forged X-Forwarded-Proto under gunicorn, 15 `serve`
restarts what crashed."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from .helpers import free_port
from .test_scale_out import wait_until_up

ROOT = Path(__file__).resolve().parent.parent


def login_attempts_in_two_processes(db_url: str, tmp_path: Path, attempts: int, **settings) -> list[int]:
    config = dict(SQLALCHEMY_DATABASE_URI=db_url, SECRET_KEY="test-secret", TESTING=False,
                  INSTANCE_PATH=str(tmp_path / "instance"), RATELIMIT_ENABLED=True,
                  LOGIN_RATE_LIMIT="10 per minute", LOGIN_ACCOUNT_RATE_LIMIT="1000 per hour",
                  SESSION_COOKIE_SECURE=False, **settings)
    processes = [subprocess.Popen([sys.executable, "-m", "tests.limit_client", json.dumps(config), str(attempts)],
                                  cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    codes = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        codes += [int(code) for code in out.split()]
    return codes


def test_login_limit_counts_across_two_processes_by_default(app, db_url, tmp_path):
    codes = login_attempts_in_two_processes(db_url, tmp_path, 12)
    assert len(codes) == 24
    assert sum(code != 429 for code in codes) == 10, codes
    assert set(codes) <= {200, 429}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_login_limit_counts_across_two_processes_in_redis(app, db_url, tmp_path):
    codes = login_attempts_in_two_processes(
        db_url, tmp_path, 12, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
        RATELIMIT_KEY_PREFIX=f"test-{uuid.uuid4().hex}")
    assert sum(code != 429 for code in codes) == 10, codes


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_memory_storage_still_counts_per_process(app, db_url, tmp_path):
    """`memory://` keeps its meaning (CONTRACT.md): each process counts on its own."""
    codes = login_attempts_in_two_processes(db_url, tmp_path, 12, RATELIMIT_STORAGE_URI="memory://")
    assert sum(code != 429 for code in codes) == 20, codes


# ---------------------------------------------------------------- real gunicorn and serve

def service_env(db_url: str, port: int, **extra) -> dict:
    env = dict(os.environ, DATABASE_URL=db_url, SECRET_KEY="test-secret", PORT=str(port),
               BASE_URL=f"http://127.0.0.1:{port}", RATELIMIT_ENABLED="0", LOAD_EXAMPLE_PROGRAMME="0",
               WEB_CONCURRENCY="1", GUNICORN_THREADS="2", SERVE_RESTART_BACKOFF="0.2",
               PYTHONUNBUFFERED="1", WORKER_NICE="0")
    env.update(extra)
    return env


class Lines:
    """What a process writes (stdout and stderr), line by line, to wait for."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.queue, self.seen = process, queue.Queue(), []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            line = self.queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"process ended before {pattern!r}: {self.seen[-20:]}")
            self.seen.append(line)
            match = regex.search(line)
            if match:
                return match


def start_service(argv: list[str], env: dict) -> tuple[subprocess.Popen, Lines]:
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    return process, Lines(process)


def stop_service(process: subprocess.Popen, lines: Lines) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    code = process.wait(60)
    lines.reader.join(30)
    process.stdout.close()
    return code


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_hsts_for_a_forged_forwarded_proto_under_gunicorn(app, db_url):
    port = free_port()
    process, lines = start_service([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                               service_env(db_url, port))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, process)
        response = requests.get(f"{base}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert response.status_code == 200
        assert "Strict-Transport-Security" not in response.headers
    finally:
        stop_service(process, lines)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_restarts_a_killed_worker_and_gunicorn(app, db_url):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, lines = start_service([sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
                                   service_env(db_url, port))
    try:
        web = int(lines.wait_for(r"serve: web \(gunicorn\) started \(pid (\d+)\)").group(1))
        worker = int(lines.wait_for(r"serve: worker started \(pid (\d+)\)").group(1))
        wait_until_up(base, process)

        os.kill(worker, signal.SIGKILL)  # as the OOM killer would
        lines.wait_for(r"serve: worker killed by SIGKILL; restarting in 0\.2 s")
        new_worker = int(lines.wait_for(r"serve: worker restarted \(pid (\d+)\)").group(1))
        assert new_worker != worker

        os.kill(web, signal.SIGKILL)
        lines.wait_for(r"serve: web \(gunicorn\) killed by SIGKILL; restarting in 0\.2 s")
        assert int(lines.wait_for(r"serve: web \(gunicorn\) restarted \(pid (\d+)\)").group(1)) != web
        wait_until_up(base, process)
        assert process.poll() is None
    finally:
        code = stop_service(process, lines)
    assert code == 0  # asked to stop: a clean stop


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_gives_up_non_zero_when_a_process_keeps_dying_at_start(app, db_url):
    # gunicorn.conf.py cannot be read with this setting: gunicorn ends at once, every time.
    process, lines = start_service([sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
                                   service_env(db_url, free_port(), WEB_CONCURRENCY="zwei"))
    try:
        lines.wait_for(r"serve: web \(gunicorn\) .*giving up")
        assert process.wait(60) == 1
    finally:
        stop_service(process, lines)
