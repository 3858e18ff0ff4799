"""Browser tests: the real server (gunicorn + worker, as `make run` starts it) on a free port with
its own SQLite database, Debian's Chromium driven by Playwright, mail caught by an SMTP server on
loopback. One server and one browser for the whole run; a fresh browser context per test."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from ..helpers import SmtpServer, free_port
from ..language import Catalogue
from .kit import AXE_JS, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, LiveServer, Mailbox

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


@pytest.fixture(scope="session")
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mailbox(smtp_server) -> Mailbox:
    return Mailbox(smtp_server.recorder)


@pytest.fixture(scope="session")
def live(tmp_path_factory, smtp_server) -> LiveServer:
    server = LiveServer(tmp_path_factory.mktemp("e2e"), free_port(), smtp_server.port)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    # No skipping: a machine without the browser must fail loudly (`make test` installs it).
    assert Path(CHROMIUM).exists(), (f"{CHROMIUM} is missing: run `make test` (it installs Debian's "
                                     "chromium) or `apt-get install chromium`")
    assert AXE_JS.exists(), f"{AXE_JS} is missing: run `cd tests/js && npm ci`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_failed = report.failed
    return report


def _context(request, browser, live: LiveServer, options: dict):
    context = browser.new_context(locale="nl-NL", timezone_id="Europe/Amsterdam", **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    if getattr(request.node, "browser_failed", False):
        # What the browser showed, and what the server said (shown with the failure).
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
        print(f"--- {live.log_path} (end)\n{live.log()}")
    context.close()


@pytest.fixture
def page(request, browser, live):
    """A desktop browser window of its own (cookies and session start empty)."""
    yield from _context(request, browser, live, DESKTOP)


@pytest.fixture
def phone(request, browser, live):
    """A 375 px wide phone screen with touch."""
    yield from _context(request, browser, live, PHONE)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Chromium against the live server "
                            "(deselect with -m 'not browser')")
