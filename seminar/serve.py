"""`flask --app wsgi serve`: gunicorn and the worker side by side, as `make run` starts them.

Ctrl-C or SIGTERM stops both; when either exits, the other is stopped too.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve_forever(port: int | None = None) -> int:
    env = dict(os.environ)
    if port:
        env["PORT"] = str(port)
    env.setdefault("PORT", "8000")
    python = sys.executable
    web = subprocess.Popen([python, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                           cwd=ROOT, env=env)
    worker = subprocess.Popen([python, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env)
    children = [web, worker]
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"Serving on http://127.0.0.1:{env['PORT']} (gunicorn) with the worker beside it; "
          "Ctrl-C stops both.", flush=True)
    try:
        pid, _status = os.wait()  # the first child to end ends the service
    except ChildProcessError:
        pid = None
    if not stopping:
        stop()
    codes = [child.wait() for child in children]
    return 0 if stopping else max(abs(c) for c in codes) or 1
