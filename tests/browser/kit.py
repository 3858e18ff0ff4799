"""What the browser tests use: the real server as `make run` starts it, mail caught on loopback,
axe-core in the page, and checks for English left on Dutch pages and mails.

Nothing here sleeps to wait for timing: every wait is a bounded loop on a condition (the server
answers /healthz, a mail has arrived).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

from playwright.sync_api import Page, expect

from ..helpers import free_port
from ..language import Catalogue

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_JS = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Playwright itself adds --headless, --no-sandbox and a fresh --user-data-dir. The network here is
# closed: without these flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Inherited from the shell that runs the tests; everything else the server sees is set below, so a
# developer's MAIL_SERVER or VIDEO_PROVIDER cannot leak into the run.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV")


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll until `condition()` returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- the server

class LiveServer:
    """`flask db upgrade`, then `flask serve` (gunicorn + worker) in a process group of its own."""

    def __init__(self, workdir: Path, port: int, smtp_port: int):
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "server.log"
        self.embedder_port = free_port()
        self.env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        self.env.update({
            "DATABASE_URL": f"sqlite:///{workdir / 'e2e.db'}",
            "PORT": str(port),
            "BASE_URL": self.url,
            "SECRET_KEY": "browser-tests-secret",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp_port),
            "MAIL_DEFAULT_SENDER": "BMK Seminars <seminars@bmk.example>",
            "VIDEO_PROVIDER": "jitsi",
            "RATELIMIT_ENABLED": "0",
            "LOAD_EXAMPLE_PROGRAMME": "0",
            "WORKER_POLL_SECONDS": "0.2",  # mails go out within a fraction of a second
            "WEB_CONCURRENCY": "2",
            "PYTHONUNBUFFERED": "1",
            # The association's site that frames /embed in test_reach.py (a loopback port: Chromium
            # lets only a local page frame a local server).
            "EMBED_ORIGINS": f"http://127.0.0.1:{self.embedder_port}",
        })
        self.process: subprocess.Popen | None = None
        # Titles, speakers and descriptions of the seminars made so far: data, the same in both
        # languages (other tests' seminars show on the programme too).
        self.data: list[str] = []

    def flask(self, *args: str) -> str:
        """Run `flask --app wsgi ARGS` against the server's database; returns its output."""
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self) -> None:
        self.flask("db", "upgrade")
        log = self.log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
                                        cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        wait_until(self._ready, 60, f"the server on {self.url} (log: {self.log_path})", interval=0.1)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return json.load(response) == {"status": "ok"}
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # serve stops gunicorn and the worker
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group is still there
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "e2e-server.log").write_bytes(self.log_path.read_bytes())

    def create_seminar(self, title: str, *, days: int = 30, capacity: int = 20, publish: bool = True,
                       speakers: str = "", description: str = "") -> tuple[int, str]:
        """A seminar through the command line; returns (id, public URL)."""
        start = (datetime.now() + timedelta(days=days)).strftime("%Y-%m-%d 10:00")
        args = ["seminar", "create", "--title", title, "--start", start, "--duration", "90",
                "--capacity", str(capacity), "--speakers", speakers, "--description", description]
        last = self.flask(*args, *(["--publish"] if publish else [])).strip().splitlines()[-1]
        self.data.extend(value for value in (title, speakers, description) if value)
        seminar_id, url = last.split()
        return int(seminar_id), url


# ---------------------------------------------------------------- mail

class Mailbox:
    """The messages the server's worker delivered to the loopback SMTP server."""

    def __init__(self, recorder):
        self.recorder = recorder

    def wait_for(self, address: str, subject: str, timeout: float = 30) -> EmailMessage:
        """The mail to `address` with this subject, once the worker has delivered it."""
        def arrived():
            for msg in self.recorder.to(address):
                if " ".join(str(msg["Subject"]).split()) == subject:
                    return msg
            return None
        return wait_until(arrived, timeout, f"a mail to {address}: {subject!r}")

    def to(self, address: str) -> list[EmailMessage]:
        return self.recorder.to(address)


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def html_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


# ---------------------------------------------------------------- pages

def shot(page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = {"serious", "critical"}


def axe(page, name: str | None = None) -> list[dict]:
    """Run axe-core on the page and return its violations (WCAG 2.2 A/AA and best practice);
    with a name they are also written to test-artifacts/axe/NAME.json.

    The script is evaluated through the DevTools protocol rather than added as a <script>: the
    site's Content-Security-Policy allows no inline script, and the test must not weaken it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text())
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS)
    violations = [
        {"rule": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [{"target": n["target"], "html": n["html"][:300], "summary": n.get("failureSummary", "")}
                   for n in v["nodes"]]}
        for v in result["violations"]
    ]
    if name:
        folder = ARTIFACTS / "axe"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps({"url": page.url, "violations": violations},
                                                        indent=2, ensure_ascii=False))
    return violations


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['rule']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {n['html']}" for n in v["nodes"])
    return "\n".join(lines)


def assert_accessible(page, name: str) -> None:
    """No serious or critical axe-core findings (the rest is in test-artifacts/axe/)."""
    blocking = [v for v in axe(page, name) if v["impact"] in BLOCKING]
    assert blocking == [], f"axe-core on {name} ({page.url}):\n{describe(blocking)}"


# Visible text and the attributes that assistive technology reads out, one segment per text node.
SEGMENTS_JS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || ['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(parent.tagName)) continue;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (text) out.push(text);
  }
  for (const el of document.querySelectorAll('[aria-label],[title],[placeholder],[alt]')) {
    for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
      const value = el.getAttribute(name);
      if (value && value.trim()) out.push(value.replace(/\\s+/g, ' ').trim());
    }
  }
  return out;
}"""


def text_segments(page) -> list[str]:
    return page.evaluate(SEGMENTS_JS)


# ---------------------------------------------------------------- what every test does

ORGANISATION = "Kinderopvang De Boomhut"
QUESTION = "Hoe bespreek ik een zorg met ouders?"
CONSENT = "I agree that my details are used for this seminar, as described in the privacy notice."


def check_page(page: Page, name: str, catalogue: Catalogue, lang: str = "nl") -> None:
    """What every page must pass: its language declared, axe-core without serious or critical
    findings, no words of the other language. Leaves a screenshot in test-artifacts/."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    shot(page, name)
    assert_accessible(page, name)
    wrong = catalogue.left_in(" \n".join(text_segments(page)), lang)
    assert wrong == [], f"other-language text on the {lang} page {name} ({page.url}): {wrong}"


def check_mail(msg, catalogue: Catalogue, lang: str = "nl") -> None:
    wrong = catalogue.left_in(f"{msg['Subject']}\n{text_of(msg)}", lang)
    assert wrong == [], f"other-language text in the {lang} mail {msg['Subject']!r}: {wrong}"


def open_mail(page: Page, msg, name: str | None = None) -> None:
    """Show the HTML part of a mail in the browser, as a mail program would (on about:blank: the
    site's Content-Security-Policy must not apply to the mail's inline styles). With a name, also
    a screenshot and axe-core (a mail has no landmarks or h1, so only moderate findings remain)."""
    page.goto("about:blank")
    page.set_content(html_of(msg))
    if name:
        shot(page, name)
        assert_accessible(page, name)


def fill_sign_up_form(page: Page, t, name: str, email: str) -> None:
    """Fill the form by its labels (`t` gives the label text in the page's language)."""
    page.get_by_label(t("Name"), exact=True).fill(name)
    page.get_by_label(t("E-mail address"), exact=True).fill(email)
    page.get_by_label(t("Organisation"), exact=True).fill(ORGANISATION)
    page.get_by_label(t("Type of location"), exact=True).select_option(
        label=t("Day care (kinderdagverblijf)"))
    page.get_by_label(t("Question for the speaker (optional)"), exact=True).fill(QUESTION)
    page.get_by_label(t(CONSENT)).check()


def fits_the_screen(page: Page) -> None:
    """Nothing sticks out sideways. A phone browser zooms out to show a page that is too wide
    (window.innerWidth grows), so this compares with the screen's own width."""
    width = page.viewport_size["width"]
    used = page.evaluate("Math.max(window.innerWidth, document.documentElement.scrollWidth)")
    assert used <= width, f"{page.url} is {used} px wide on a {width} px screen"
