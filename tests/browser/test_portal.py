"""An organiser in a real browser: logs in, creates a seminar, publishes it, sees someone sign up
and downloads the attendee list. Every portal page on the way is checked with axe-core and for
English left on the Dutch pages."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from .kit import (ORGANISATION, QUESTION, Catalogue, LiveServer, Mailbox, check_page,
                  fill_sign_up_form, open_mail, text_segments)

pytestmark = pytest.mark.browser

ORGANISER = "organisator@bmk.example"
PASSWORD = "een lange zin als wachtwoord"


def test_organiser_creates_publishes_and_downloads_the_attendee_list(
        page: Page, live: LiveServer, mailbox: Mailbox, catalogue: Catalogue):
    nl = catalogue.nl
    live.flask("user", "create", "--email", ORGANISER, "--role", "organiser", "--password", PASSWORD)
    title = "Kindermishandeling bespreekbaar maken in het team"
    live.data.append(title)

    page.goto(live.url + "/manage/")
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Log in to the seminar portal"))
    check_page(page, "portal-01-login", catalogue)
    page.get_by_label(nl("E-mail address"), exact=True).fill(ORGANISER)
    page.get_by_label(nl("Password"), exact=True).fill(PASSWORD)
    page.get_by_role("button", name=nl("Log in"), exact=True).click()
    portal_nav = page.get_by_role("navigation", name=nl("Portal"))
    expect(portal_nav).to_be_visible()
    check_page(page, "portal-02-seminars", catalogue)

    # A new seminar: first sent empty (the mistakes are shown), then filled in, as a draft.
    portal_nav.get_by_role("link", name=nl("New seminar")).click()
    page.get_by_role("button", name=nl("Save"), exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(nl("Please check the form"))
    check_page(page, "portal-03-new-seminar-errors", catalogue)
    start = (datetime.now() + timedelta(days=40)).replace(hour=14, minute=0)
    page.get_by_label(nl("Title"), exact=True).fill(title)
    page.get_by_label(nl("Start (Dutch time)"), exact=True).fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label(nl("Duration in minutes"), exact=True).fill("90")
    page.get_by_label(nl("Number of seats"), exact=True).fill("40")
    page.get_by_label(nl("Speakers"), exact=True).fill("Fatima El Amrani")
    page.get_by_role("button", name=nl("Save"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_role("status")).to_have_text(
        nl("The seminar has been saved as a draft. Publish it to open sign-up."))

    page.get_by_role("button", name=nl("Publish"), exact=True).click()
    expect(page.get_by_role("status")).to_have_text(nl(
        "The seminar has been published: sign-up is open and the meeting is being created."))
    check_page(page, "portal-04-seminar", catalogue)
    seminar_page = page.url

    # Someone signs up on the public page and confirms from the mail.
    page.get_by_role("link", name=nl("Public page")).click()
    address = "daan.portal@kinderopvang.example"
    fill_sign_up_form(page, nl, "Daan Visser", address)
    page.get_by_role("button", name=nl("Sign up"), exact=True).click()
    open_mail(page, mailbox.wait_for(address, nl("Please confirm your sign-up: %(title)s", title=title)))
    page.get_by_role("link", name=nl("Confirm my sign-up")).click()
    page.get_by_role("button", name=nl("Confirm my sign-up")).click()
    expect(page.locator(".status")).to_have_text(nl("seat confirmed"))

    page.goto(seminar_page)
    page.get_by_role("link", name=nl("Attendee list"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Attendees"))
    row = page.get_by_role("row").filter(has_text="Daan Visser")
    expect(row).to_contain_text(address)
    expect(row).to_contain_text(nl("with a seat"))
    check_page(page, "portal-05-attendees", catalogue)

    with page.expect_download() as download:
        page.get_by_role("link", name=nl("CSV for Excel")).click()
    assert download.value.suggested_filename.endswith(".csv")
    raw = download.value.path().read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Dutch Excel would garble the accents"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert any("Daan Visser" in r and address in r and ORGANISATION in r for r in rows[1:]), rows
    with page.expect_download() as download:
        page.get_by_role("link", name=nl("Excel (.xlsx)")).click()
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True).active
    assert any("Daan Visser" in [str(c) for c in r] for r in sheet.iter_rows(values_only=True))

    # After the seminar: attendance, follow-up settings and evaluation of this seminar.
    attendees_page = page.url
    page.goto(seminar_page)
    page.get_by_role("link", name=nl("After the seminar: attendance, certificates, follow-up and evaluation")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Attendance"))
    expect(page.get_by_role("row").filter(has_text="Daan Visser")).to_contain_text(nl("absent"))
    check_page(page, "portal-10-after-the-seminar", catalogue)

    # The other portal pages an organiser reaches from the menu.
    visited = [seminar_page, attendees_page, page.url]
    for link, name in [("Search registrations", "portal-06-registrations"),
                       ("Hosts and organisers", "portal-07-users"),
                       ("Outbox", "portal-08-outbox"),
                       ("My account", "portal-09-account")]:
        portal_nav.get_by_role("link", name=nl(link)).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        check_page(page, name, catalogue)
        visited.append(page.url)

    # Text that reads the same in Dutch and English and is not data never went through gettext.
    data = [*live.data, "Fatima El Amrani", "Daan Visser", ORGANISATION, QUESTION, ORGANISER, address,
            "Brancheorganisatie Maatschappelijke Kinderopvang", "Jitsi", "BMK Seminars"]
    untranslated = {}
    for url in visited:
        sep = "&" if "?" in url else "?"
        page.goto(f"{url}{sep}lang=nl")
        dutch = text_segments(page)
        page.goto(f"{url}{sep}lang=en")
        same = catalogue.same_in_both(dutch, text_segments(page), data)
        if same:
            untranslated[url] = same
    assert untranslated == {}, "untranslated text on portal pages"
