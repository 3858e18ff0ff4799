"""The sign-up load generator: `concurrency` clients, each doing complete sign-ups one after the
other (GET the form, POST it with its CSRF token and the session cookie, as a browser would).

It runs in a process of its own (`python -m bench.loadgen < params.json`) and is kept lean:
plain threads with http.client, one new connection per person (kept alive for their GET and
POST), no redirects followed. It reports its own CPU time so its share of the 2 cores is known.
"""
from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from urllib.parse import urlencode

CSRF = re.compile(rb'name="csrf_token"[^>]*?value="([^"]+)"')


def _cookies(response) -> str:
    jar = []
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.append(header.split(";", 1)[0].strip())
    return "; ".join(jar)


def sign_up(host: str, port: int, path: str, i: int, prefix: str, timeout: float) -> tuple[float, float, int]:
    """One person: returns (GET seconds, POST seconds, POST status)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "text/html"})
        page = conn.getresponse()
        body = page.read()
        t1 = time.perf_counter()
        if page.status != 200:
            raise RuntimeError(f"GET {page.status}")
        match = CSRF.search(body)
        if match is None:
            raise RuntimeError("no CSRF token on the page")
        form = {
            "csrf_token": match.group(1).decode(), "name": f"Bench Persoon {i}",
            "email": f"{prefix}{i}@kinderopvang.example", "organisation": "Kinderopvang De Bench",
            "location_type": "kdv", "question": "", "consent": "y", "website": "",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
        cookie = _cookies(page)
        if cookie:
            headers["Cookie"] = cookie
        conn.request("POST", path, body=urlencode(form), headers=headers)
        answer = conn.getresponse()
        answer.read()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, answer.status
    finally:
        conn.close()


def press_button(host: str, port: int, path: str, i: int, prefix: str, timeout: float) -> tuple[float, float, int]:
    """Follow a mailed link and press its button (GET the page, POST its CSRF token)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "text/html"})
        page = conn.getresponse()
        body = page.read()
        t1 = time.perf_counter()
        if page.status != 200:
            raise RuntimeError(f"GET {page.status}")
        match = CSRF.search(body)
        if match is None:
            raise RuntimeError("no CSRF token on the page")
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
        cookie = _cookies(page)
        if cookie:
            headers["Cookie"] = cookie
        conn.request("POST", path, body=urlencode({"csrf_token": match.group(1).decode()}), headers=headers)
        answer = conn.getresponse()
        answer.read()
        return t1 - t0, time.perf_counter() - t1, answer.status
    finally:
        conn.close()


def run(params: dict) -> dict:
    host, port = params["host"], params["port"]
    paths = params.get("paths")
    path = params.get("path")
    count = len(paths) if paths else params["count"]
    concurrency = params["concurrency"]
    prefix, timeout = params.get("prefix", "p"), params.get("timeout", 30.0)
    ok_status = params.get("ok_status", 303)
    lock = threading.Lock()
    next_index = iter(range(count))
    records: list[tuple[float, float, float, float]] = []  # start, get, post, end
    errors: list[str] = []
    statuses: dict[str, int] = {}
    barrier = threading.Barrier(concurrency + 1)

    def client() -> None:
        barrier.wait()
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            start = time.perf_counter()
            try:
                if paths:
                    got, posted, status = press_button(host, port, paths[i], i, prefix, timeout)
                else:
                    got, posted, status = sign_up(host, port, path, i, prefix, timeout)
            except Exception as exc:  # noqa: BLE001 - every failure is an error to report
                with lock:
                    errors.append(f"{exc.__class__.__name__}: {exc}")
                    statuses["exception"] = statuses.get("exception", 0) + 1
                continue
            end = time.perf_counter()
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == ok_status:
                    records.append((start, got, posted, end))
                else:
                    errors.append(f"POST answered {status}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    t1 = time.perf_counter()
    cpu = time.process_time() - cpu0
    first = min((r[0] for r in records), default=t0)
    last = max((r[3] for r in records), default=t1)
    return {
        "first_start": first, "last_end": last, "clock": "perf_counter",
        "ok": len(records), "errors": len(errors), "error_samples": errors[:5], "statuses": statuses,
        "wall": last - first, "elapsed": t1 - t0, "cpu_seconds": cpu,
        "signup_ms": [round((r[3] - r[0]) * 1000, 3) for r in records],
        "get_ms": [round(r[1] * 1000, 3) for r in records],
        "post_ms": [round(r[2] * 1000, 3) for r in records],
    }


if __name__ == "__main__":
    params = json.load(sys.stdin)
    json.dump(run(params), sys.stdout)
