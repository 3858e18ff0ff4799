"""Benchmark 1: a sign-up burst against the real service, and against the floor in the same run."""
from __future__ import annotations

import json
import subprocess
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from .common import (PY, ROOT, Gunicorn, Monitor, Service, flask, free_port, fresh_database, log,
                     percentile, service_env)


def loadgen(port: int, path: str, count: int, concurrency: int, prefix: str) -> dict:
    params = {"host": "127.0.0.1", "port": port, "path": path, "count": count,
              "concurrency": concurrency, "prefix": prefix}
    out = subprocess.run([PY, "-m", "bench.loadgen"], cwd=ROOT, input=json.dumps(params),
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def summarise(result: dict, rows: int, expected_rows: int, usage, extra: dict | None = None) -> dict:
    ms = result["signup_ms"]
    summary = {
        "signups_per_s": result["ok"] / result["wall"] if result["wall"] else 0.0,
        "ok": result["ok"], "errors": result["errors"], "error_samples": result["error_samples"],
        "statuses": result["statuses"],
        "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms) if ms else None,
        "get_p99_ms": percentile(result["get_ms"], 99), "post_p99_ms": percentile(result["post_ms"], 99),
        "rows": rows, "expected_rows": expected_rows, "wall_s": result["wall"],
        "loadgen_cpu_s": result["cpu_seconds"],
        # Share of the machine's 2 cores the load generator itself used while it ran.
        "loadgen_cpu_share": result["cpu_seconds"] / (result["elapsed"] * 2) if result["elapsed"] else None,
        "peak_rss_mb": dict(usage.peak_rss_mb), "cpu_s": {k: round(v, 2) for k, v in usage.cpu_seconds.items()},
    }
    summary.update(extra or {})
    return summary


def start_text() -> str:
    return (datetime.now() + timedelta(days=60)).strftime("%Y-%m-%d 10:00")


def run_candidate(backend: str, sink, count: int, concurrency: int, warmup: int, tag: str,
                  env_extra: dict | None = None, root: Path = ROOT) -> dict:
    with fresh_database(backend) as db, tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
        port = free_port()
        env = service_env(db, port, sink.port, **(env_extra or {}))
        service = Service(env, Path(tmp), root)
        service.prepare()
        out = flask(env, "seminar", "create", "--title", "Signalen herkennen in de kinderopvang",
                    "--start", start_text(), "--duration", "90", "--capacity", "100000", "--publish", root=root)
        _seminar_id, url = out.strip().splitlines()[-1].split()
        path = urlparse(url).path
        service.start()
        try:
            loadgen(port, path, warmup, concurrency, f"warm{tag}-")
            sink_before = sink.stats()["count"]
            with Monitor(service.roles) as monitor:
                result = loadgen(port, path, count, concurrency, f"burst{tag}-")
            mailed = sink.stats()["count"] - sink_before
        finally:
            service.stop()
        rows = db.scalar("SELECT count(*) FROM registration")
        jobs = db.scalar("SELECT count(*) FROM job WHERE kind = 'mail.confirm_address'")
    return summarise(result, rows, warmup + result["ok"], monitor.usage,
                     {"confirm_mail_jobs": jobs, "mails_sent_during_burst": mailed})


def run_floor(backend: str, count: int, concurrency: int, warmup: int, tag: str) -> dict:
    from .floor_app import create_table

    with fresh_database(backend) as db, tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
        create_table(db.url)
        port = free_port()
        env = service_env(db, port, None, FLOOR_DATABASE_URL=db.url)
        server = Gunicorn("bench.floor_app:app", env, Path(tmp))
        try:
            server.wait("/healthz")
            loadgen(port, "/form", warmup, concurrency, f"warm{tag}-")
            with Monitor(server.roles) as monitor:
                result = loadgen(port, "/form", count, concurrency, f"burst{tag}-")
        finally:
            server.stop()
        rows = db.scalar("SELECT count(*) FROM floor_signup")
    return summarise(result, rows, warmup + result["ok"], monitor.usage)


def run(backends: list[str], sink, repeats: int, count: int, concurrency: int, warmup: int) -> dict:
    results = {}
    for backend in backends:
        runs = {"candidate": [], "floor": []}
        for r in range(repeats):
            for variant in ("candidate", "floor"):  # A B A B …
                log(f"sign-up burst · {backend} · repeat {r + 1}/{repeats} · {variant}")
                if variant == "candidate":
                    res = run_candidate(backend, sink, count, concurrency, warmup, f"{r}")
                else:
                    res = run_floor(backend, count, concurrency, warmup, f"{r}")
                log(f"  {res['signups_per_s']:.1f} sign-ups/s, p50 {res['p50_ms']:.0f} ms, "
                    f"p99 {res['p99_ms']:.0f} ms, errors {res['errors']}, rows {res['rows']}/{res['expected_rows']}, "
                    f"peak RSS {', '.join(f'{k} {v:.0f} MB' for k, v in res['peak_rss_mb'].items())}")
                runs[variant].append(res)
        results[backend] = runs
    return results
