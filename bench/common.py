"""What every benchmark shares: databases, the real service as `make run` starts it, memory and
CPU sampling, and small statistics."""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
RESULTS = ROOT / "bench" / "results"


# ---------------------------------------------------------------- small things

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, q: float):
    """Linear interpolation between closest ranks (q in 0..100)."""
    data = sorted(values)
    if not data:
        return None
    k = (len(data) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        out = subprocess.run(["psql", PG_ADMIN, "-Atc", "SHOW server_version"], capture_output=True,
                             text=True, timeout=10)
        info["postgresql"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["postgresql"] = None
    return info


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


# ---------------------------------------------------------------- databases

def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except Exception:
        return False


class Database:
    """A fresh database: a SQLite file in a temporary folder, or a PostgreSQL database of its own
    (`bench_<random>`), dropped again afterwards."""

    def __init__(self, backend: str, template: "Database | None" = None):
        self.backend = backend
        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        self.tmp = Path(tempfile.mkdtemp(prefix="seminar-bench-"))
        if backend == "sqlite":
            self.path = self.tmp / "seminar.db"
            if template is not None:
                template.checkpoint()
                shutil.copyfile(template.path, self.path)
            self.url = f"sqlite:///{self.path}"
        elif backend == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                if template is not None:
                    conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template.name}"')
                else:
                    conn.execute(f'CREATE DATABASE "{self.name}"')
            base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            self.url = f"{base}/{self.name}"
        else:
            raise ValueError(backend)

    @property
    def plain_url(self) -> str:
        """For psycopg / sqlite3 directly."""
        return self.url.replace("postgresql+psycopg://", "postgresql://", 1)

    def checkpoint(self) -> None:
        if self.backend == "sqlite" and self.path.exists():
            with sqlite3.connect(self.path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def scalar(self, sql: str, *args):
        if self.backend == "sqlite":
            with sqlite3.connect(self.path, timeout=30) as conn:
                return conn.execute(sql, args).fetchone()[0]
        import psycopg

        with psycopg.connect(self.plain_url) as conn:
            return conn.execute(sql.replace("?", "%s"), args).fetchone()[0]

    def rows(self, sql: str, *args) -> list[tuple]:
        if self.backend == "sqlite":
            with sqlite3.connect(self.path, timeout=30) as conn:
                return conn.execute(sql, args).fetchall()
        import psycopg

        with psycopg.connect(self.plain_url) as conn:
            return conn.execute(sql.replace("?", "%s"), args).fetchall()

    def execute(self, sql: str) -> None:
        if self.backend == "sqlite":
            with sqlite3.connect(self.path, timeout=30) as conn:
                conn.executescript(sql)
            return
        import psycopg

        with psycopg.connect(self.plain_url, autocommit=True) as conn:
            conn.execute(sql)

    def drop(self) -> None:
        if self.backend == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextmanager
def fresh_database(backend: str, template: Database | None = None):
    db = Database(backend, template)
    try:
        yield db
    finally:
        db.drop()


# ---------------------------------------------------------------- processes

def service_env(db: Database, port: int, smtp_port: int | None, **extra) -> dict:
    """The environment of the real service in a benchmark (CONTRACT.md's settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "TEAMS_", "JITSI_", "MAIL_"))}
    env.update(
        DATABASE_URL=db.url, PORT=str(port), BASE_URL=f"http://127.0.0.1:{port}",
        SECRET_KEY="bench-secret-key-not-for-production", RATELIMIT_ENABLED="0",
        LOAD_EXAMPLE_PROGRAMME="0", VIDEO_PROVIDER="jitsi", PYTHONUNBUFFERED="1",
    )
    env.pop("GUNICORN_ACCESSLOG", None)
    if smtp_port:
        env.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port))
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def flask(env: dict, *args: str, timeout: float = 300, root: Path = ROOT) -> str:
    """`flask --app wsgi …` as an operator types it; returns stdout."""
    out = subprocess.run([PY, "-m", "flask", "--app", "wsgi", *args], cwd=root, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


SCHEMA_NOTES: set[str] = set()

CREATE_ALL = """
from seminar import create_app
from seminar.extensions import db
app = create_app()
with app.app_context():
    db.drop_all()
    db.create_all()
"""


def prepare_schema(env: dict, root: Path = ROOT) -> None:
    """`flask db upgrade`, as `make run` does. While the models are ahead of the migrations (they
    are regenerated separately), the schema is made from the models instead, and the report says so."""
    flask(env, "db", "upgrade", root=root)
    check = subprocess.run([PY, "-m", "flask", "--app", "wsgi", "db", "check"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=120)
    if check.returncode == 0:
        SCHEMA_NOTES.add("migrations (`flask db upgrade`)")
        return
    SCHEMA_NOTES.add("models (`db.create_all()`): the migrations were behind the models when this ran")
    out = subprocess.run([PY, "-c", CREATE_ALL], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"create_all failed:\n{out.stderr[-3000:]}")


def wait_http(url: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


class Process:
    """A process group we started (and stop again by its own id)."""

    def __init__(self, cmd: list[str], env: dict, log_path: Path, root: Path = ROOT):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Service:
    """The real service, started as `make run` starts it: `db upgrade`, `seminar load-example`,
    then `flask --app wsgi serve` (gunicorn with gunicorn.conf.py + the worker beside it)."""

    def __init__(self, env: dict, workdir: Path, root: Path = ROOT):
        self.env = env
        self.workdir = workdir
        self.root = root
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    def prepare(self) -> None:
        prepare_schema(self.env, self.root)
        # A no-op with LOAD_EXAMPLE_PROGRAMME=0, as in make run.
        flask(self.env, "seminar", "load-example", root=self.root)

    def start(self) -> None:
        self.process = Process([PY, "-m", "flask", "--app", "wsgi", "serve"], self.env,
                               self.workdir / "service.log", self.root)
        try:
            wait_http(f"{self.base}/healthz", self.process.popen)
            self._wait_for_roles()
        except Exception:
            print(self.process.tail(), file=sys.stderr)
            raise

    def _wait_for_roles(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            roles = self.roles()
            if roles["web"] and roles["worker"]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"service processes not found: {self.roles()}")

    def roles(self) -> dict[str, list[int]]:
        """pids by role: gunicorn workers ("web") and the outbox worker ("worker")."""
        web, worker = [], []
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return {"web": [], "worker": []}
        for child in children:
            try:
                cmd = " ".join(child.cmdline())
                parent = child.parent()
                parent_cmd = " ".join(parent.cmdline()) if parent else ""
            except psutil.Error:
                continue
            if "gunicorn" in cmd and "gunicorn" in parent_cmd:
                web.append(child.pid)
            elif "flask" in cmd and cmd.rstrip().endswith("worker"):
                worker.append(child.pid)
        return {"web": web, "worker": worker}

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Gunicorn:
    """Any WSGI app under the production gunicorn settings (gunicorn.conf.py): the floors."""

    def __init__(self, app: str, env: dict, workdir: Path):
        self.env = env
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = Process([PY, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app], env,
                               workdir / f"{app.replace(':', '_')}.log")

    def wait(self, path: str) -> None:
        try:
            wait_http(f"{self.base}{path}", self.process.popen)
        except Exception:
            print(self.process.tail(), file=sys.stderr)
            raise

    def roles(self) -> dict[str, list[int]]:
        try:
            return {"web": [c.pid for c in psutil.Process(self.process.pid).children()], "worker": []}
        except psutil.NoSuchProcess:
            return {"web": [], "worker": []}

    def stop(self) -> None:
        self.process.stop()


# ---------------------------------------------------------------- memory and CPU

def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of a process so far (the kernel's VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Usage:
    peak_rss_mb: dict[str, float] = field(default_factory=dict)   # role -> max over its processes
    cpu_seconds: dict[str, float] = field(default_factory=dict)   # role -> CPU used in the window
    wall: float = 0.0


class Monitor:
    """Samples the RSS of every process of each role every `interval` s (and reads the kernel's
    peak, VmHWM, at the end), and counts the CPU each role used while it ran."""

    def __init__(self, roles_fn, extra: dict[str, list[int]] | None = None, interval: float = 0.05):
        self.roles_fn = roles_fn
        self.extra = extra or {}
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._role_of: dict[int, str] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _roles(self) -> dict[str, list[int]]:
        roles = dict(self.roles_fn())
        for role, pids in self.extra.items():
            roles[role] = list(pids)
        return roles

    def _sample(self) -> None:
        for role, pids in self._roles().items():
            for pid in pids:
                try:
                    p = psutil.Process(pid)
                    with p.oneshot():
                        rss = p.memory_info().rss / 2**20
                        t = p.cpu_times()
                        cpu = t.user + t.system
                except psutil.Error:
                    continue
                self._role_of[pid] = role
                self._cpu_start.setdefault(pid, cpu)
                self._cpu_last[pid] = cpu
                peak = self.usage.peak_rss_mb
                peak[role] = max(peak.get(role, 0.0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "Monitor":
        self._t0 = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.usage.wall = time.monotonic() - self._t0
        for pid, role in self._role_of.items():
            hwm = vm_hwm_mb(pid)
            if hwm is not None:
                self.usage.peak_rss_mb[role] = max(self.usage.peak_rss_mb.get(role, 0.0), hwm)
            used = self._cpu_last.get(pid, 0.0) - self._cpu_start.get(pid, 0.0)
            self.usage.cpu_seconds[role] = self.usage.cpu_seconds.get(role, 0.0) + used


def save_json(name: str, data) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
