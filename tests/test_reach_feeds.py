"""The programme feeds (/programma.ics, /programma.atom) and the embeddable listing (/embed)."""
from __future__ import annotations

from datetime import timedelta

import feedparser
import pytest
from icalendar import Calendar

from seminar import create_app
from seminar.programme.service import cancel_seminar, update_seminar
from seminar.reach.embed import EmbedOriginsError, frame_ancestors

from .helpers import future, make_app
from .icaljs import parse_with_icaljs


def _events(body: bytes) -> dict[str, object]:
    cal = Calendar.from_ical(body)
    return {str(event["summary"]): event for event in cal.walk("VEVENT")}


def test_programme_feed_lists_published_upcoming_seminars(client, make_seminar):
    first = make_seminar(title="Eerste seminar", start_at=future(days=10))
    make_seminar(title="Concept", publish=False)
    make_seminar(title="Tweede seminar", start_at=future(days=40))
    response = client.get("/programma.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    body = response.data

    cal = Calendar.from_ical(body)
    assert str(cal["method"]) == "PUBLISH"
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT6H" in body.decode()
    events = _events(body)
    assert set(events) == {"Eerste seminar", "Tweede seminar"}  # no draft
    assert str(events["Eerste seminar"]["uid"]) == f"seminar-{first.id}@bmk.example"
    assert "http://seminar.test/seminars/" in str(events["Eerste seminar"]["url"])

    parsed = parse_with_icaljs(body)
    assert parsed["method"] == "PUBLISH"
    starts = {e["summary"]: e["start_utc"] for e in parsed["events"]}
    assert starts["Eerste seminar"] == first.start_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {e["status"] for e in parsed["events"]} == {"CONFIRMED"}
    # The same UID as the seminar's own .ics: a calendar that has both sees one event.
    single = Calendar.from_ical(client.get(f"/seminars/{first.slug}.ics").data)
    assert [str(e["uid"]) for e in single.walk("VEVENT")] == [str(events["Eerste seminar"]["uid"])]


def test_moved_seminar_keeps_uid_with_higher_sequence_and_cancelled_stays_until_its_date(client, make_seminar):
    seminar = make_seminar(title="Verhuist")
    before = _events(client.get("/programma.ics").data)["Verhuist"]
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=7))
    moved = _events(client.get("/programma.ics").data)["Verhuist"]
    assert moved["uid"] == before["uid"]
    assert int(moved["sequence"]) > int(before["sequence"])
    assert moved.decoded("dtstart") == before.decoded("dtstart") + timedelta(days=7)

    cancel_seminar(seminar.id)
    body = client.get("/programma.ics").data
    cancelled = _events(body)["Verhuist"]
    assert str(cancelled["status"]) == "CANCELLED"
    assert int(cancelled["sequence"]) > int(moved["sequence"])
    [event] = parse_with_icaljs(body)["events"]
    assert (event["status"], event["uid"]) == ("CANCELLED", str(before["uid"]))


def test_past_seminars_leave_the_feeds(make_seminar):
    from seminar.reach.feeds import programme

    seminar = make_seminar(title="Voorbij", start_at=future(days=1), duration_minutes=60)
    assert [s.title for s in programme()] == ["Voorbij"]
    assert programme(now=seminar.end_at + timedelta(minutes=1)) == []


def test_atom_feed_parses_and_names_each_seminar(client, make_seminar):
    seminar = make_seminar(title="Atoom & <meer>", description="Over de meldcode.")
    make_seminar(title="Gaat niet door")
    cancel_seminar(make_seminar(title="Afgelast").id)
    response = client.get("/programma.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    titles = [entry.title for entry in feed.entries]
    assert "Atoom & <meer>" in titles
    assert "Geannuleerd: Afgelast" in titles
    entry = feed.entries[titles.index("Atoom & <meer>")]
    assert entry.link == f"http://seminar.test/seminars/{seminar.slug}"
    assert entry.id.startswith("tag:bmk.example,") and entry.id.endswith(f":seminar-{seminar.id}")
    assert "10 plaatsen vrij" in entry.summary
    assert feed.feed.links[0].href == "http://seminar.test/programma.atom"


def test_home_page_links_the_feeds(client, make_seminar):
    page = client.get("/").get_data(as_text=True)
    assert 'href="webcal://seminar.test/programma.ics"' in page
    assert 'href="http://seminar.test/programma.atom"' in page


# ---------------------------------------------------------------- framing

@pytest.fixture
def app_config():
    return {"EMBED_ORIGINS": "https://www.bmk.example https://*.kinderopvang.example:8443"}


def _ancestors(response) -> str:
    csp = response.headers["Content-Security-Policy"]
    [directive] = [d.strip() for d in csp.split(";") if d.strip().startswith("frame-ancestors")]
    return directive


def test_embed_is_frameable_only_from_embed_origins(client, make_seminar):
    seminar = make_seminar(title="In het kader", capacity=3)
    response = client.get("/embed")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "In het kader" in page and "3 plaatsen vrij" in page
    assert f'href="http://seminar.test/seminars/{seminar.slug}" target="_blank" rel="noopener"' in page
    assert _ancestors(response) == "frame-ancestors https://www.bmk.example https://*.kinderopvang.example:8443"
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize("path", ["/", "/privacy", "/programma.ics", "/programma.atom", "/manage/login",
                                  "/interesse/bedankt", "/nergens", "/seminars/{slug}", "/embed/"])
def test_no_other_page_is_frameable(client, make_seminar, path):
    seminar = make_seminar()
    response = client.get(path.format(slug=seminar.slug))
    assert _ancestors(response) == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_without_embed_origins_nobody_may_frame_the_embed(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    from seminar.extensions import db

    with app.app_context():
        db.create_all()
        response = app.test_client().get("/embed")
        assert _ancestors(response) == "frame-ancestors 'none'"
        assert response.headers["X-Frame-Options"] == "DENY"
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("bad", ["*", "https://x.example/path", "https://x.example; script-src *",
                                 "'unsafe-inline'", "javascript:alert(1)", "x.example"])
def test_embed_origins_that_are_not_origins_stop_the_start(bad, tmp_path):
    with pytest.raises(EmbedOriginsError, match="EMBED_ORIGINS"):
        frame_ancestors(bad)
    with pytest.raises(EmbedOriginsError):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x",
                    "INSTANCE_PATH": str(tmp_path), "EMBED_ORIGINS": bad})


def test_embed_origins_are_normalised():
    assert frame_ancestors("https://WWW.bmk.example/, https://www.bmk.example") == "https://www.bmk.example"
    assert frame_ancestors("") == frame_ancestors(None) == "'none'"
