"""Parse iCalendar text with ical.js, the parser Thunderbird's calendar uses.

Tests use this to check that the invites our service mails are understood by
Mozilla's parser the way we intend::

    from tests.icaljs import parse_with_icaljs

    result = parse_with_icaljs(ics_bytes)
    assert result["method"] == "REQUEST"
    assert result["events"][0]["start_utc"] == "2027-04-02T08:00:00Z"

Each call runs ``node tests/js/parse-ics.mjs`` once with the text on stdin
(roughly 60-80 ms per call, mostly node start-up). The JSON shape is
documented at the top of ``tests/js/parse-ics.mjs``.

Needs ``node`` (>= 18) on PATH, and ``npm`` the first time, when
``ensure_icaljs_installed`` runs ``npm ci`` in ``tests/js`` to install the
pinned ical.js from ``package-lock.json``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent / "js"
PARSE_SCRIPT = JS_DIR / "parse-ics.mjs"
PACKAGE_JSON = JS_DIR / "package.json"
INSTALLED_PACKAGE_JSON = JS_DIR / "node_modules" / "ical.js" / "package.json"

PARSE_TIMEOUT_SECONDS = 60
INSTALL_TIMEOUT_SECONDS = 300

_installed_checked = False


class IcalJsError(RuntimeError):
    """ical.js could not be installed or run, or rejected the input."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def _pinned_version() -> str:
    return json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["dependencies"]["ical.js"]


def _installed_version() -> str | None:
    try:
        return json.loads(INSTALLED_PACKAGE_JSON.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _which(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise IcalJsError(
            f"`{program}` was not found on PATH; the ical.js test harness needs "
            "Node.js (>= 18) and npm."
        )
    return path


def ensure_icaljs_installed() -> None:
    """Install the pinned ical.js into tests/js/node_modules if it is missing.

    Runs ``npm ci --no-audit --no-fund`` in tests/js when node_modules lacks
    ical.js, or holds a version other than the one pinned in package.json.
    Safe to call from several processes at once (pytest-xdist): installs are
    serialised with a lock file in the system temp directory.
    """
    global _installed_checked
    if _installed_checked:
        return

    pinned = _pinned_version()
    if _installed_version() != pinned:
        npm = _which("npm")
        key = hashlib.sha256(str(JS_DIR).encode()).hexdigest()[:16]
        lock_path = Path(tempfile.gettempdir()) / f"icaljs-npm-ci-{key}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # Another process may have installed it while we waited.
                if _installed_version() != pinned:
                    try:
                        proc = subprocess.run(
                            [npm, "ci", "--no-audit", "--no-fund"],
                            cwd=JS_DIR,
                            capture_output=True,
                            text=True,
                            timeout=INSTALL_TIMEOUT_SECONDS,
                        )
                    except subprocess.TimeoutExpired as exc:
                        raise IcalJsError(
                            f"`npm ci` in {JS_DIR} timed out after {INSTALL_TIMEOUT_SECONDS}s"
                        ) from exc
                    if proc.returncode != 0:
                        raise IcalJsError(
                            f"`npm ci` in {JS_DIR} failed with exit code {proc.returncode}:\n"
                            f"{proc.stderr.strip() or proc.stdout.strip()}",
                            returncode=proc.returncode,
                            stderr=proc.stderr,
                        )
                    installed = _installed_version()
                    if installed != pinned:
                        raise IcalJsError(
                            f"`npm ci` finished but node_modules has ical.js {installed!r}, "
                            f"expected {pinned!r}; is package-lock.json in sync with package.json?"
                        )
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    _installed_checked = True


def parse_with_icaljs(ics: bytes | str) -> dict[str, Any]:
    """Parse one VCALENDAR with ical.js and return what it understood.

    ``ics`` is the calendar text; bytes must be UTF-8 (as sent in a
    ``text/calendar; charset=UTF-8`` part). Returns the JSON printed by
    tests/js/parse-ics.mjs as a dict. Raises IcalJsError, carrying node's
    stderr, when node is missing or ical.js cannot parse the input.
    """
    if isinstance(ics, str):
        data = ics.encode("utf-8")
    elif isinstance(ics, (bytes, bytearray, memoryview)):
        data = bytes(ics)
    else:
        raise TypeError(f"ics must be bytes or str, not {type(ics).__name__}")

    ensure_icaljs_installed()
    node = _which("node")
    try:
        proc = subprocess.run(
            [node, str(PARSE_SCRIPT)],
            input=data,
            capture_output=True,
            timeout=PARSE_TIMEOUT_SECONDS,
            cwd=JS_DIR,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        raise IcalJsError(f"ical.js parse timed out after {PARSE_TIMEOUT_SECONDS}s") from exc

    stderr = proc.stderr.decode("utf-8", errors="replace").strip()
    if proc.returncode != 0:
        raise IcalJsError(
            f"ical.js failed to parse the calendar (exit code {proc.returncode}):\n{stderr}",
            returncode=proc.returncode,
            stderr=stderr,
        )
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise IcalJsError(
            f"parse-ics.mjs printed invalid JSON: {exc}\nstdout: {proc.stdout[:500]!r}\n"
            f"stderr: {stderr}",
            returncode=proc.returncode,
            stderr=stderr,
        ) from exc


__all__ = ["IcalJsError", "ensure_icaljs_installed", "parse_with_icaljs"]
