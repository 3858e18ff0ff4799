"""An attention officer in a real browser: sign up, open the mail, confirm, see the seat, cancel;
the same on a phone; the form by keyboard, mistakes included; and the site in English. Every page
is checked with axe-core and for words of the other language."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .kit import (BLOCKING, ORGANISATION, QUESTION, Catalogue, LiveServer, Mailbox,
                  assert_accessible, axe, check_mail, check_page, fill_sign_up_form, fits_the_screen,
                  open_mail, shot, text_of, text_segments)

pytestmark = pytest.mark.browser


def test_sign_up_confirm_see_the_seat_and_cancel(page: Page, live: LiveServer, mailbox: Mailbox,
                                                 catalogue: Catalogue):
    nl = catalogue.nl
    title = "Signalen herkennen bij baby's en dreumesen"
    _, seminar_url = live.create_seminar(title, speakers="Dr. Mirjam Bakker",
                                         description="Wat zie je, wat doe je, en met wie overleg je?")
    address = "anouk.desktop@kinderopvang.example"

    page.goto(live.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        nl("Online seminars for attention officers in childcare"))
    check_page(page, "01-programme", catalogue)

    page.get_by_role("link", name=title).click()
    expect(page).to_have_url(seminar_url)
    check_page(page, "02-seminar", catalogue)

    fill_sign_up_form(page, nl, "Anouk de Vries", address)
    page.get_by_role("button", name=nl("Sign up"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Check your mail"))
    check_page(page, "03-check-your-mail", catalogue)

    confirm_mail = mailbox.wait_for(address, nl("Please confirm your sign-up: %(title)s", title=title))
    check_mail(confirm_mail, catalogue)
    open_mail(page, confirm_mail, "04-mail-confirm")
    page.get_by_role("link", name=nl("Confirm my sign-up")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Confirm your sign-up"))
    confirm_url = page.url
    check_page(page, "05-confirm", catalogue)

    page.get_by_role("button", name=nl("Confirm my sign-up")).click()
    expect(page.get_by_role("status")).to_have_text(nl(
        "Thank you, your e-mail address is confirmed and your seat is reserved. You will receive a "
        "mail with your personal join link and a calendar invite."))
    expect(page.locator(".status")).to_have_text(nl("seat confirmed"))
    check_page(page, "06-your-seat", catalogue)
    manage_url = page.url

    seat_mail = mailbox.wait_for(address, nl("Your seat is confirmed: %(title)s", title=title))
    check_mail(seat_mail, catalogue)
    assert any(part.get_content_type() == "text/calendar" for part in seat_mail.walk())
    assert re.search(rf"{re.escape(live.url)}/r/join/\S+", text_of(seat_mail))
    open_mail(page, seat_mail, "07-mail-seat")
    expect(page.get_by_role("link", name=nl("Join the seminar"))).to_be_visible()

    # The confirmation link again: already used, and the way to the registration.
    page.goto(confirm_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("This link has already been used"))
    check_page(page, "08-link-used", catalogue)

    page.goto(manage_url)
    page.get_by_role("button", name=nl("Cancel my registration")).click()
    expect(page.get_by_role("status")).to_have_text(nl(
        "Your registration has been cancelled. You will receive a confirmation by mail."))
    expect(page.locator(".status")).to_have_text(nl("cancelled"))
    check_page(page, "09-cancelled", catalogue)
    check_mail(mailbox.wait_for(address, nl("Registration cancelled: %(title)s", title=title)), catalogue)

    page.goto(live.url + "/privacy")
    check_page(page, "10-privacy", catalogue)
    page.goto(live.url + "/seminars/no-such-seminar")
    check_page(page, "11-not-found", catalogue)


def test_sign_up_on_a_phone(phone: Page, live: LiveServer, mailbox: Mailbox, catalogue: Catalogue):
    nl = catalogue.nl
    page = phone
    title = "De Meldcode in de praktijk: het afwegingskader"
    _, seminar_url = live.create_seminar(title, speakers="Sanne Jansen (Veilig Thuis)")
    address = "anouk.phone@kinderopvang.example"

    page.goto(live.url + "/")
    assert page.evaluate("window.innerWidth") == 375
    fits_the_screen(page)
    check_page(page, "phone-01-programme", catalogue)
    page.get_by_role("link", name=title).tap()
    expect(page).to_have_url(seminar_url)
    fits_the_screen(page)
    check_page(page, "phone-02-seminar", catalogue)

    fill_sign_up_form(page, nl, "Anouk de Vries", address)
    button = page.get_by_role("button", name=nl("Sign up"), exact=True)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["height"] >= 24
    button.tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Check your mail"))
    fits_the_screen(page)
    check_page(page, "phone-03-check-your-mail", catalogue)

    confirm_mail = mailbox.wait_for(address, nl("Please confirm your sign-up: %(title)s", title=title))
    open_mail(page, confirm_mail, "phone-04-mail-confirm")
    fits_the_screen(page)
    page.get_by_role("link", name=nl("Confirm my sign-up")).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Confirm your sign-up"))
    fits_the_screen(page)
    page.get_by_role("button", name=nl("Confirm my sign-up")).tap()
    expect(page.locator(".status")).to_have_text(nl("seat confirmed"))
    fits_the_screen(page)
    check_page(page, "phone-05-your-seat", catalogue)
    open_mail(page, mailbox.wait_for(address, nl("Your seat is confirmed: %(title)s", title=title)),
              "phone-06-mail-seat")
    fits_the_screen(page)


def focused(page: Page) -> str:
    """What has the keyboard focus: the element's id, else its text."""
    return page.evaluate("""() => { const el = document.activeElement;
        return el.id || (el.textContent || '').replace(/\\s+/g, ' ').trim() || el.tagName; }""")


def test_the_form_by_keyboard_with_errors_tied_to_their_fields(page: Page, live: LiveServer,
                                                               catalogue: Catalogue):
    nl = catalogue.nl
    title = "Praten met ouders over een vermoeden"
    _, seminar_url = live.create_seminar(title)
    page.goto(seminar_url)

    # The first Tab shows the skip link; Enter jumps past the header into the content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name=nl("Skip to content"))
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0, "the focused skip link is off screen"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    # From there, Tab visits the page in reading order; the hidden honeypot field is skipped.
    order = []
    for _ in range(11):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == [nl("Add to my calendar (.ics)"), "name", "email", "organisation", "function",
                     "location_type", "question", nl("Read the full privacy statement"), "consent",
                     "interest", nl("Sign up")]

    # Send the form with a wrong address and the rest empty, by keyboard only.
    page.locator("#name").focus()
    page.keyboard.type("Anouk de Vries")
    page.keyboard.press("Tab")
    page.keyboard.type("anouk@")
    page.keyboard.press("Enter")

    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()  # a screen reader reads the summary first
    expect(summary).to_contain_text(nl("Please check the form"))
    shot(page, "12-form-errors")
    assert_accessible(page, "12-form-errors")
    errors = {
        "email": nl("This is not a valid e-mail address."),
        "organisation": nl("Please fill in your organisation."),
        "location_type": nl("Please choose the type of location."),
        "consent": nl("Without your consent we cannot register you."),
    }
    for field_id, message in errors.items():
        field = page.locator(f"#{field_id}")
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile(re.escape(message)))
    expect(page.locator("#name")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name")).to_have_value("Anouk de Vries")  # nothing typed is lost

    # The summary's links lead to the fields: follow the one for the e-mail address.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("href", "#email")
    page.keyboard.press("Enter")
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("anouk.keyboard@kinderopvang.example")
    page.keyboard.press("Tab")
    page.keyboard.type(ORGANISATION)
    page.keyboard.press("Tab")  # the function (optional)
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # the first type of location
    expect(page.locator("#location_type")).to_have_value("kdv")
    page.keyboard.press("Tab")  # the question (optional)
    page.keyboard.press("Tab")  # the privacy statement link
    page.keyboard.press("Tab")
    expect(page.locator("#consent")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(nl("Check your mail"))


def test_input_purposes_for_assistive_tech_and_the_forms_own_messages(page: Page, live: LiveServer,
                                                                     catalogue: Catalogue):
    """WCAG 2.1 SC 1.3.5 (axe-core does not test it): every field about the person declares its
    purpose, the e-mail field is type=email, and the forms leave checking to us (novalidate), so
    the messages are the form's own Dutch ones, not the browser's."""
    nl = catalogue.nl
    _, seminar_url = live.create_seminar("Meldcode in de praktijk")
    page.goto(seminar_url)
    expect(page.locator("form:has(#email)")).to_have_attribute("novalidate", "")
    for field_id, purpose in (("name", "name"), ("email", "email"), ("organisation", "organization"),
                              ("function", "organization-title")):
        expect(page.locator(f"#{field_id}")).to_have_attribute("autocomplete", purpose)
    expect(page.locator("#email")).to_have_attribute("type", "email")
    page.locator("#name").fill("Anouk de Vries")
    page.locator("#email").fill("anouk@")  # the browser itself would stop this with its own words
    page.get_by_role("button", name=nl("Sign up"), exact=True).click()
    expect(page.locator("#email")).to_have_accessible_description(
        re.compile(re.escape(nl("This is not a valid e-mail address."))))

    for path, fields in (("/manage/login", {"email": ("email", "username"),
                                            "password": ("password", "current-password")}),
                         ("/manage/password/forgot", {"email": ("email", "email")})):
        page.goto(live.url + path)
        expect(page.locator("form:has(#email)")).to_have_attribute("novalidate", "")
        for field_id, (kind, purpose) in fields.items():
            expect(page.locator(f"#{field_id}")).to_have_attribute("type", kind)
            expect(page.locator(f"#{field_id}")).to_have_attribute("autocomplete", purpose)


def test_in_english_pages_and_mails(page: Page, live: LiveServer, mailbox: Mailbox,
                                    catalogue: Catalogue):
    title = "Online veiligheid van jonge kinderen"
    speakers = "Ellen de Groot"
    _, seminar_url = live.create_seminar(title, speakers=speakers,
                                         description="Beeldmateriaal, apps en ouders.")
    address = "anouk.english@kinderopvang.example"

    page.goto(seminar_url)
    page.get_by_role("navigation", name=catalogue.nl("Language")).get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    check_page(page, "en-01-seminar", catalogue, "en")
    fill_sign_up_form(page, str, "Anouk de Vries", address)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your mail")
    signed_up_url = page.url
    check_page(page, "en-02-check-your-mail", catalogue, "en")

    mail = mailbox.wait_for(address, f"Please confirm your sign-up: {title}")
    check_mail(mail, catalogue, "en")
    open_mail(page, mail)
    page.get_by_role("link", name="Confirm my sign-up").click()
    page.get_by_role("button", name="Confirm my sign-up").click()
    expect(page.locator(".status")).to_have_text("seat confirmed")
    check_page(page, "en-03-your-seat", catalogue, "en")
    manage_url = page.url.split("?")[0]
    check_mail(mailbox.wait_for(address, f"Your seat is confirmed: {title}"), catalogue, "en")

    # Text that reads the same in both languages and is not data never went through gettext.
    data = [*live.data, "Anouk de Vries", ORGANISATION, QUESTION,
            "Brancheorganisatie Maatschappelijke Kinderopvang"]
    for url in [live.url + "/", seminar_url, signed_up_url, manage_url, live.url + "/privacy",
                live.url + "/seminars/no-such-seminar"]:
        page.goto(f"{url}?lang=nl")
        dutch = text_segments(page)
        page.goto(f"{url}?lang=en")
        english = text_segments(page)
        assert catalogue.same_in_both(dutch, english, data) == [], f"untranslated text on {url}"


def test_axe_and_the_language_checks_can_fail(browser, catalogue: Catalogue):
    """The checks above pass only because the pages are right: the same checks on a page with
    known faults report them."""
    context = browser.new_context()
    page = context.new_page()
    page.set_content("""<html><body><p style="color:#bbb;background:#fff">Please check the form</p>
        <input type="text"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></body></html>""")
    rules = {v["rule"] for v in axe(page) if v["impact"] in BLOCKING}
    context.close()
    assert {"color-contrast", "label", "image-alt", "html-has-lang"} <= rules
    assert catalogue.left_in("Controleer het formulier. Please check the form", "nl")
    assert catalogue.left_in("Please check the form. Controleer het formulier", "en")
    both = ["Sign up now", "Privacy", "Anouk de Vries"]
    assert catalogue.same_in_both(both, both, ["Anouk de Vries"]) == ["Sign up now"]
