"""Microsoft Teams via Graph, end to end against the Graph stand-in (tests/standins/graph.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from seminar.models import Seminar
from seminar.programme.service import cancel_seminar, update_seminar
from seminar.video import get_provider
from seminar.video.base import platform_meeting_id
from seminar.video.zoom import zulu
from tests.standins.graph import GraphStandIn

from .helpers import jobs, later, registrations, work
from .video_kit import (confirm_many, enable_logs, fresh, join_target, seat_mails,
                        sign_up_through_site)

USER = "organiser@bmk.example"


@pytest.fixture
def graph():
    with GraphStandIn(tenant="bmk-tenant", known_users=[USER]) as server:
        yield server


@pytest.fixture
def app_config(graph):
    return {
        "VIDEO_PROVIDER": "teams",
        "TEAMS_TENANT_ID": "bmk-tenant",
        "TEAMS_CLIENT_ID": graph.client_id,
        "TEAMS_CLIENT_SECRET": graph.client_secret,
        "TEAMS_USER_ID": USER,
        "GRAPH_API_BASE": graph.api_base,
        "GRAPH_TOKEN_URL": graph.token_url,
    }


@pytest.fixture(autouse=True)
def graph_stays_clean(graph):
    enable_logs()
    yield
    graph.assert_clean()


def the_meeting(graph, seminar) -> dict:
    return graph.meetings[platform_meeting_id(fresh(Seminar, seminar.id))]


def test_teams_links_are_shared_and_said_to_be(app):
    assert get_provider().personal_links is False
    assert get_provider("zoom").personal_links is True and get_provider("jitsi").personal_links is True


def test_the_whole_flow_with_teams(app, client, graph, make_seminar):
    seminar = make_seminar(title="Omgaan met gedrag")
    assert graph.calls == []  # publishing calls nobody
    work()
    meeting = the_meeting(graph, seminar)
    stored = fresh(Seminar, seminar.id)
    assert stored.video_provider == "teams" and stored.meeting_join_url == meeting["joinWebUrl"]
    assert meeting["subject"] == "Omgaan met gedrag"
    assert meeting["startDateTime"].startswith(zulu(seminar.start_at)[:-1])
    assert meeting["lobbyBypassSettings"]["scope"] == "organization"
    # Graph ids are longer than meeting_id holds: the full id is kept beside it.
    assert len(meeting["id"]) > 64 and stored.meeting_ref == meeting["id"] and len(stored.meeting_id) <= 64

    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    sign_up_through_site(app, client, seminar, "Bram Jansen", "bram@bso.example")
    work()
    # Everyone's link leads to the one shared meeting link.
    assert join_target(client, app, "anouk@kinderopvang.example") == meeting["joinWebUrl"]
    assert join_target(client, app, "bram@bso.example") == meeting["joinWebUrl"]
    assert sorted(seat_mails(app).values()) == [1, 1]

    new_start = seminar.start_at + timedelta(days=1, hours=2)
    update_seminar(seminar.id, start_at=new_start, duration_minutes=60)
    work()
    [patch] = [c for c in graph.calls if c.method == "PATCH"]
    assert patch.json == {"subject": "Omgaan met gedrag", "startDateTime": zulu(new_start),
                          "endDateTime": zulu(new_start + timedelta(minutes=60))}
    assert the_meeting(graph, seminar)["endDateTime"].startswith(zulu(new_start + timedelta(minutes=60))[:-1])

    meeting_id = meeting["id"]
    cancel_seminar(seminar.id)
    work()
    assert meeting_id in graph.deleted and meeting_id not in graph.meetings
    assert [c.method for c in graph.calls if c.method == "DELETE"] == ["DELETE"]


def test_throttling_and_garbage_at_graph_lose_nothing(app, graph, make_seminar, caplog):
    graph.fail_next(1, status=429, retry_after=30)
    seminar = make_seminar()
    work()
    [job] = jobs("video.create_meeting")
    assert job.state == "pending" and job.due_at >= later(0) + timedelta(seconds=25)
    assert "429" in fresh(Seminar, seminar.id).platform_error
    graph.fail_next(1, status=200, body=b"<html>", content_type="text/html")
    work(now=later(1))  # HTML where JSON was due: a temporary fault, tried again after a backoff
    assert "with HTML" in caplog.text
    work(now=later(3))
    [job] = jobs("video.create_meeting")
    assert job.state == "done" and job.attempts == 3
    assert fresh(Seminar, seminar.id).meeting_join_url and fresh(Seminar, seminar.id).platform_error is None
    assert len(graph.meetings) == 1


def test_an_expired_graph_token_is_refreshed_once(app, graph, make_seminar):
    seminar = make_seminar()
    work()
    assert graph.token_requests == 1
    graph.expire_tokens()
    update_seminar(seminar.id, title="Nieuwe titel")
    work()
    assert graph.token_requests == 2 and the_meeting(graph, seminar)["subject"] == "Nieuwe titel"


def test_a_meeting_deleted_in_teams_is_made_anew_on_reschedule(app, graph, make_seminar):
    seminar = make_seminar()
    work()
    confirm_many(seminar, 2)
    work()
    old = the_meeting(graph, seminar)
    graph.deleted[old["id"]] = graph.meetings.pop(old["id"])
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=3))
    work()
    new = the_meeting(graph, seminar)
    assert new["id"] != old["id"]
    assert {r.join_url for r in registrations()} == {new["joinWebUrl"]}
