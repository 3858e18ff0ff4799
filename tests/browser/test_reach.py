"""Reach in a real browser: the embed framed by the association's site (and nothing else framed),
the programme feed, and the whole interest-list year: subscribe on the home page, confirm from
the mail, get the announcement, unsubscribe in one click, get no further announcement."""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from playwright.sync_api import Page, expect

from ..helpers import free_port
from ..icaljs import parse_with_icaljs
from .kit import Catalogue, LiveServer, Mailbox, check_mail, check_page, open_mail, text_of

pytestmark = pytest.mark.browser


class Site:
    """Another web site on a loopback port: each path answers a page with the given iframes."""

    def __init__(self, port: int):
        pages = self.pages = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page_with(self, path: str, frames: dict[str, str]) -> str:
        iframes = "".join(f'<iframe name="{name}" src="{url}" title="{name}" width="600" height="300"></iframe>'
                          for name, url in frames.items())
        self.pages[path] = f"<!doctype html><html lang='nl'><title>Nieuws</title><body>{iframes}</body></html>"
        return self.url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def visit(page: Page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    for frame in page.frames[1:]:
        frame.wait_for_load_state("domcontentloaded")


def shows_our_page(page: Page, name: str, text: str) -> bool:
    frame = page.frame(name=name)
    try:
        frame.wait_for_load_state()
        return text in frame.evaluate("document.body ? document.body.innerText : ''")
    except Exception:  # noqa: BLE001 - a blocked frame is an error page Chromium may not let us read
        return False


def test_embed_is_framed_only_by_the_association_site(page: Page, live: LiveServer, catalogue: Catalogue):
    title = "In het kader van de meldcode"
    live.create_seminar(title, capacity=12)
    association, elsewhere = Site(live.embedder_port), Site(free_port())
    try:
        visit(page, association.page_with("/nieuws", {
            "embed": f"{live.url}/embed", "home": f"{live.url}/", "privacy": f"{live.url}/privacy"}))
        expect(page.frame_locator("iframe[name=embed]").get_by_role("link", name=title, exact=True)).to_be_visible()
        assert shows_our_page(page, "embed", "12 plaatsen vrij")
        # Every other page refuses to be framed, even by the allowed site.
        assert not shows_our_page(page, "home", "Aankomende seminars")
        assert not shows_our_page(page, "privacy", "Privacy")
        # Another site may not frame even the embed.
        visit(page, elsewhere.page_with("/", {"embed": f"{live.url}/embed"}))
        assert not shows_our_page(page, "embed", title)
    finally:
        association.close()
        elsewhere.close()
    page.goto(f"{live.url}/embed")
    check_page(page, "reach-embed", catalogue)


def test_programme_feed_in_the_browser(page: Page, live: LiveServer):
    title = "Feed in de agenda"
    live.create_seminar(title)
    page.goto(live.url + "/")
    webcal = page.get_by_role("link", name="abonneren (webcal)").get_attribute("href")
    assert webcal == live.url.replace("http://", "webcal://") + "/programma.ics"
    response = page.request.get(f"{live.url}/programma.ics")
    assert response.ok and response.headers["content-type"].startswith("text/calendar")
    parsed = parse_with_icaljs(response.body())
    assert parsed["method"] == "PUBLISH" and title in [e["summary"] for e in parsed["events"]]


def test_subscribe_confirm_announce_unsubscribe(page: Page, live: LiveServer, mailbox: Mailbox,
                                                catalogue: Catalogue):
    nl = catalogue.nl
    address = "lijst.browser@kinderopvang.example"
    page.goto(live.url + "/")
    page.get_by_label(nl("E-mail address"), exact=True).fill(address)
    page.get_by_label(nl("Name (optional)"), exact=True).fill("Lotte Lijst")
    page.get_by_label(nl("Organisation (optional)"), exact=True).fill("BSO De Vlinder")
    page.get_by_role("button", name=nl("Keep me informed")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Check your mail"))
    check_page(page, "reach-check-your-mail", catalogue)

    confirm = mailbox.wait_for(address, nl("Please confirm: announcements of our seminars"))
    check_mail(confirm, catalogue)
    open_mail(page, confirm, "reach-mail-confirm")
    page.get_by_role("link", name=nl("Yes, keep me informed")).click()
    check_page(page, "reach-confirm", catalogue)
    page.get_by_role("button", name=nl("Yes, keep me informed")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("You are on the list"))

    title = "Aangekondigd in de browser"
    seminar_id, _ = live.create_seminar(title)
    assert "announcement queued for 1 addresses" in live.flask("seminar", "announce", str(seminar_id))
    announcement = mailbox.wait_for(address, nl("New seminar: %(title)s", title=title))
    check_mail(announcement, catalogue)
    assert announcement["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<https://127\.0\.0\.1:\d+/r/list/unsubscribe/[\w.\-]+>", announcement["List-Unsubscribe"])
    open_mail(page, announcement, "reach-mail-announcement")

    # One press: the seat.
    page.get_by_role("link", name=nl("Reserve my seat")).click()
    expect(page.get_by_label(nl("Organisation"), exact=True)).to_have_value("BSO De Vlinder")
    page.get_by_label(nl("Type of location"), exact=True).select_option(label=nl("Out-of-school care (BSO)"))
    check_page(page, "reach-reserve", catalogue)
    page.get_by_role("button", name=nl("Reserve my seat")).click()
    expect(page.locator(".status")).to_have_text(nl("seat confirmed"))

    # Unsubscribe with the link in the mail (the mail client's one-click POST is in the unit tests).
    unsubscribe = re.search(r"(http://\S+/r/list/unsubscribe/\S+)", text_of(announcement)).group(1)
    page.goto(unsubscribe)
    check_page(page, "reach-unsubscribe", catalogue)
    page.get_by_role("button", name=nl("Unsubscribe")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("You are unsubscribed"))

    second_id, _ = live.create_seminar("Na het afmelden")
    assert "announcement queued for 0 addresses" in live.flask("seminar", "announce", str(second_id))


def test_organiser_announces_from_the_portal(page: Page, live: LiveServer, mailbox: Mailbox,
                                             catalogue: Catalogue):
    nl = catalogue.nl
    organiser, password = "aankondiger@bmk.example", "een lange zin als wachtwoord"
    live.flask("user", "create", "--email", organiser, "--role", "organiser", "--password", password)
    title = "Aangekondigd vanuit het portaal"
    seminar_id, _ = live.create_seminar(title)

    page.goto(live.url + "/manage/login")
    page.get_by_label(nl("E-mail address"), exact=True).fill(organiser)
    page.get_by_label(nl("Password"), exact=True).fill(password)
    page.get_by_role("button", name=nl("Log in"), exact=True).click()
    page.goto(f"{live.url}/manage/seminars/{seminar_id}")
    page.get_by_role("link", name=nl("Announce to the interest list")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Announce to the interest list"))
    expect(page.locator("pre.announcement-preview")).to_contain_text(nl("Reserve my seat"))
    check_page(page, "reach-portal-announce", catalogue)

    page.get_by_role("button", name=nl("Send a test to my own address")).click()
    mailbox.wait_for(organiser, "[Test] " + nl("New seminar: %(title)s", title=title))
    page.get_by_role("button", name=nl("Send the announcement")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Interest list"))
    expect(page.get_by_role("cell", name=title, exact=True)).to_be_visible()
    check_page(page, "reach-portal-list", catalogue)
