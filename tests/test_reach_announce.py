"""Announcements to the interest list: RFC 8058 one-click unsubscribe, never mailed again,
at most once per seminar, people signed up skipped, full/cancelled refused, CLI and dry run."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from seminar.extensions import db
from seminar.models import Registration
from seminar.reach.announce import announce

from .helpers import Person, work
from .reach_helpers import on_the_list, list_links, mails_to, old_token, path_of, press, subscribe, subscriber

ANOUK = "anouk@kinderopvang.example"


def confirmed_subscriber(app, client, email=ANOUK, **kw):
    return on_the_list(app, client, email, **kw)


@pytest.fixture
def app_config():
    # Announcements go out from the https address, as in production.
    return {"BASE_URL": "https://seminar.test"}


def test_announcement_unsubscribe_in_one_click_and_never_again(app, client, make_seminar):
    sub = confirmed_subscriber(app, client)
    first = make_seminar(title="Eerste")
    assert announce(first.id).recipients == 1
    work()
    [mail] = [m for m in mails_to(app, ANOUK) if "Eerste" in m["Subject"]]
    assert mail["Subject"] == "Nieuw seminar: Eerste"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = mail["List-Unsubscribe"]
    assert header.startswith("<https://seminar.test/r/list/unsubscribe/") and header.endswith(">")
    url = header[1:-1]
    # As sent: the URL on one line, not folded into encoded words (clients do not decode them).
    raw = max(Path(app.config["MAIL_DIR"]).glob("*.eml")).read_bytes()
    assert re.search(rb"^List-Unsubscribe: <https://seminar\.test/r/list/unsubscribe/[^\s>]+>\r?$", raw, re.M)
    assert re.search(rb"^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$", raw, re.M)
    visible = list_links(mail)
    assert visible["unsubscribe"] == url  # the same link is in the text
    assert "reserve" in visible
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert url in html

    # A link checker's GET changes nothing and shows a button.
    page = client.get(path_of(url))
    assert page.status_code == 200 and "Afmelden" in page.get_data(as_text=True)
    assert subscriber(ANOUK).status == "active"

    # The mail client's POST: the RFC 8058 body, no cookies, no CSRF token.
    mail_client = app.test_client(use_cookies=False)
    response = mail_client.post(path_of(url), data="List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    gone = subscriber(ANOUK)
    assert gone.status == "unsubscribed" and gone.name == ""
    # Again (a client retrying) is fine.
    assert mail_client.post(path_of(url), data="List-Unsubscribe=One-Click",
                            content_type="application/x-www-form-urlencoded").status_code == 200

    # Signing up for a seminar without the box does not put them back on the list.
    Person(client).sign_up(first)
    work()
    second = make_seminar(title="Tweede")
    assert announce(second.id).recipients == 0
    work()
    assert not [m for m in mails_to(app, ANOUK) if "Tweede" in m["Subject"]]
    assert sub.id == subscriber(ANOUK).id


def test_forged_expired_and_swapped_unsubscribe_links_are_404(app, client, make_seminar):
    sub = confirmed_subscriber(app, client)
    other = confirmed_subscriber(app, client, "bram@bso.example")
    seminar = make_seminar()
    announce(seminar.id)
    work()
    url = list_links(mails_to(app, ANOUK)[-1])["unsubscribe"]
    token = path_of(url).rsplit("/", 1)[1]
    confirm_url = [list_links(m)["confirm"] for m in mails_to(app, ANOUK) if "confirm" in list_links(m)][0]
    confirm_token = path_of(confirm_url).rsplit("/", 1)[1]
    bad = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),          # forged signature
        old_token(app, "unsubscribe", {"s": sub.id, "n": sub.nonce}, 401 * 86400),  # expired
        confirm_token,                                                       # another purpose
        old_token(app, "unsubscribe", {"s": other.id, "n": sub.nonce}, 0),   # another person's id
        old_token(app, "unsubscribe", {"s": "1", "n": sub.nonce}, 0),
        "x" * 300,
    ]
    fresh = old_token(app, "unsubscribe", {"s": sub.id, "n": sub.nonce}, 0)
    assert client.get(f"/r/list/unsubscribe/{fresh}").status_code == 200  # the control: made right, it works
    for value in bad:
        for method in ("get", "post"):
            response = getattr(app.test_client(use_cookies=False), method)(
                f"/r/list/unsubscribe/{value}", data="List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded")
            assert response.status_code == 404, (value, method)
            body = response.get_data(as_text=True)
            assert ANOUK not in body and "bram@bso.example" not in body
    assert subscriber(ANOUK).status == "active" and subscriber("bram@bso.example").status == "active"


def test_erased_and_resubscribed_address_old_links_do_not_work(app, client):
    from seminar.reach.service import erase

    sub = confirmed_subscriber(app, client)
    token = old_token(app, "unsubscribe", {"s": sub.id, "n": sub.nonce}, 0)
    erase(ANOUK)
    confirmed_subscriber(app, client, "nieuw@bso.example")
    assert client.post(f"/r/list/unsubscribe/{token}").status_code == 404
    assert subscriber("nieuw@bso.example").status == "active"


def test_resubscribing_after_unsubscribe_needs_a_new_confirmation(app, client):
    from seminar.reach.service import unsubscribe

    sub = confirmed_subscriber(app, client)
    unsubscribe(sub.id)
    subscribe(client, ANOUK)
    assert subscriber(ANOUK).status == "pending"
    work()
    press(client, list_links(mails_to(app, ANOUK)[-1])["confirm"])
    assert subscriber(ANOUK).status == "active"


def test_unconfirmed_resubscribe_lapses_back_to_unsubscribed(app, client):
    from datetime import timedelta

    from seminar import privacy
    from seminar.reach.service import unsubscribe
    from seminar.timeutil import utcnow

    sub = confirmed_subscriber(app, client)
    unsubscribe(sub.id)
    subscribe(client, ANOUK)  # by someone else, perhaps: never confirmed
    subscribe(client, "nooit@bso.example")
    privacy.purge(now=utcnow() + timedelta(hours=49))
    assert subscriber(ANOUK).status == "unsubscribed"  # still protected from announcements
    assert subscriber("nooit@bso.example") is None
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == 0


def test_each_subscriber_gets_an_announcement_once_per_seminar(app, client, make_seminar):
    confirmed_subscriber(app, client)
    seminar = make_seminar(title="Eenmaal")
    assert announce(seminar.id).recipients == 1
    assert announce(seminar.id).recipients == 0  # announcing again: nobody twice
    confirmed_subscriber(app, client, "bram@bso.example")
    assert announce(seminar.id, dry_run=True).recipients == 1
    assert announce(seminar.id).recipients == 1  # only the newcomer
    work()
    assert len([m for m in mails_to(app, ANOUK) if "Eenmaal" in m["Subject"]]) == 1
    assert len([m for m in mails_to(app, "bram@bso.example") if "Eenmaal" in m["Subject"]]) == 1


def test_people_signed_up_are_skipped_and_mail_is_in_their_language(app, client, make_seminar):
    confirmed_subscriber(app, client)
    confirmed_subscriber(app, client, "bram@bso.example", language="en")
    seminar = make_seminar(title="Taal")
    Person(client).sign_up(seminar)  # Anouk signed up already (pending is enough)
    assert announce(seminar.id).recipients == 1
    work()
    assert not [m for m in mails_to(app, ANOUK) if "Nieuw seminar" in m["Subject"]]
    [mail] = [m for m in mails_to(app, "bram@bso.example") if "Taal" in m["Subject"]]
    assert mail["Subject"] == "New seminar: Taal"


def test_someone_who_signs_up_before_the_mail_goes_is_not_mailed(app, client, make_seminar):
    confirmed_subscriber(app, client)
    seminar = make_seminar(title="Te laat")
    announce(seminar.id)
    Person(client).sign_up(seminar)
    work()
    assert not [m for m in mails_to(app, ANOUK) if "Nieuw seminar" in m["Subject"]]


@pytest.mark.parametrize("state, reason", [("full", "full"), ("cancelled", "cancelled"),
                                           ("draft", "not published"), ("started", "started")])
def test_announcing_a_seminar_that_cannot_take_anyone_is_refused(app, client, make_seminar, runner, state, reason):
    from datetime import timedelta

    from seminar.programme.service import cancel_seminar
    from seminar.reach.announce import AnnounceRefused

    from .helpers import future
    from .portal_helpers import attendee

    confirmed_subscriber(app, client)
    from seminar.timeutil import utcnow

    seminar = make_seminar(capacity=1, publish=state != "draft",
                           start_at=future() if state != "started" else utcnow() - timedelta(minutes=10))
    if state == "full":
        attendee(seminar, "Bram", "bram@bso.example")
    if state == "cancelled":
        cancel_seminar(seminar.id)
    with pytest.raises(AnnounceRefused, match=reason):
        announce(seminar.id)
    result = runner.invoke(args=["seminar", "announce", str(seminar.id)])
    assert result.exit_code != 0 and f"not announced: the seminar" in result.output and reason in result.output


def test_cli_announce_and_dry_run(app, client, make_seminar, runner):
    confirmed_subscriber(app, client)
    confirmed_subscriber(app, client, "bram@bso.example")
    seminar = make_seminar()
    result = runner.invoke(args=["seminar", "announce", str(seminar.id), "--dry-run"])
    assert result.exit_code == 0 and result.output.strip() == "2 would get the announcement"
    assert mails_to(app, ANOUK) and not [m for m in mails_to(app, ANOUK) if "Nieuw" in m["Subject"]]
    result = runner.invoke(args=["seminar", "announce", str(seminar.id)])
    assert result.exit_code == 0 and result.output.strip() == "announcement queued for 2 addresses"
    result = runner.invoke(args=["seminar", "announce", str(seminar.id), "--dry-run"])
    assert result.output.strip() == "0 would get the announcement"
    result = runner.invoke(args=["seminar", "announce", "9999"])
    assert result.exit_code != 0 and "no seminar with that id" in result.output


def test_unsubscribing_drops_announcements_still_queued(app, client, make_seminar):
    from seminar.reach.service import unsubscribe

    sub = confirmed_subscriber(app, client)
    seminar = make_seminar(title="Nog in de rij")
    announce(seminar.id)
    unsubscribe(sub.id)
    work()
    assert not [m for m in mails_to(app, ANOUK) if "Nog in de rij" in m["Subject"]]


def test_a_waiting_person_is_never_queued_behind_an_announcement(app, client, make_seminar):
    from seminar.jobs import kinds
    from seminar.jobs.runner import claim

    for i in range(5):
        confirmed_subscriber(app, client, f"volger{i}@bso.example")
    seminar = make_seminar()
    work()  # the meeting exists
    assert announce(seminar.id).recipients == 5
    Person(client).sign_up(seminar)  # queued after the announcement, due at the same moment
    first = claim("test-worker", limit=1)
    assert [job.kind for job in first] == [kinds.CONFIRM_ADDRESS.name]
