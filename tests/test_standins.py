"""Tests of the Zoom / Microsoft Graph stand-ins themselves (tests/standins)."""
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.standins.graph import GraphStandIn
from tests.standins.zoom import ZoomStandIn

START = "2030-01-01T10:00:00Z"


# --------------------------------------------------------------------- Zoom
@pytest.fixture
def zoom():
    with ZoomStandIn() as server:
        yield server


def zoom_token(zoom):
    r = requests.post(zoom.oauth_url, auth=(zoom.client_id, zoom.client_secret),
                      params={"grant_type": "account_credentials", "account_id": zoom.account_id})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def api(zoom):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {zoom_token(zoom)}"
    session.base = zoom.api_base
    return session


def make_meeting(api, approval_type=0, kind="meetings", **extra):
    body = {"topic": "Seminar", "start_time": START, "duration": 90,
            "settings": {"approval_type": approval_type}, **extra}
    r = api.post(f"{api.base}/users/me/{kind}", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def add(api, mid, email, kind="meetings", **extra):
    return api.post(f"{api.base}/{kind}/{mid}/registrants",
                    json={"email": email, "first_name": "Ann", "last_name": "Lee", **extra})


def test_zoom_token_flow(zoom):
    token = zoom_token(zoom)
    assert zoom.token_requests == 1
    body = requests.post(zoom.oauth_url, auth=("cid", "csecret"), data={
        "grant_type": "account_credentials", "account_id": "acct"}).json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3599 and body["scope"]
    assert body["access_token"] != token

    bad = requests.post(zoom.oauth_url, auth=("cid", "wrong"),
                        params={"grant_type": "account_credentials", "account_id": "acct"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    bad = requests.post(zoom.oauth_url, auth=("cid", "csecret"),
                        params={"grant_type": "account_credentials", "account_id": "other"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert zoom.token_requests == 4

    r = requests.get(f"{zoom.api_base}/meetings/123")
    assert r.status_code == 401 and r.json() == {"code": 124, "message": "Invalid access token."}
    zoom.assert_clean()


def test_zoom_meeting_lifecycle(zoom, api):
    m = make_meeting(api, start_time="2030-01-01T10:00:00", timezone="Europe/Berlin")
    assert isinstance(m["id"], int) and m["join_url"] and m["start_url"]
    assert m["start_time"] == "2030-01-01T09:00:00Z"  # local time converted to UTC
    assert m["settings"]["approval_type"] == 0 and m["settings"]["registration_type"] == 1
    mid = m["id"]
    assert api.get(f"{api.base}/meetings/{mid}").json()["topic"] == "Seminar"

    r = api.patch(f"{api.base}/meetings/{mid}", json={"topic": "Renamed", "settings": {"approval_type": 1}})
    assert r.status_code == 204 and r.content == b""
    got = api.get(f"{api.base}/meetings/{mid}").json()
    assert got["topic"] == "Renamed" and got["settings"]["approval_type"] == 1
    assert zoom.meetings[mid]["topic"] == "Renamed"

    assert api.delete(f"{api.base}/meetings/{mid}").status_code == 204
    r = api.get(f"{api.base}/meetings/{mid}")
    assert r.status_code == 404
    assert r.json() == {"code": 3001, "message": f"Meeting does not exist: {mid}."}
    assert api.patch(f"{api.base}/meetings/{mid}", json={"topic": "x"}).json()["code"] == 3001
    assert mid in zoom.deleted
    zoom.assert_clean()
    assert [c.status for c in zoom.calls if c.path.endswith(str(mid))] == [200, 204, 200, 204, 404, 404]


def test_zoom_registrants_single_batch_and_cancel(zoom, api):
    mid = make_meeting(api)["id"]
    one = add(api, mid, "ann@example.com")
    assert one.status_code == 201
    one = one.json()
    assert one["id"] == mid and one["registrant_id"] and one["topic"] == "Seminar"
    assert f"/w/{mid}?tk=" in one["join_url"] and one["start_time"] == START

    r = api.post(f"{api.base}/meetings/{mid}/batch_registrants", json={"auto_approve": True, "registrants": [
        {"email": f"p{i}@example.com", "first_name": f"P{i}"} for i in range(3)]})
    assert r.status_code == 200, r.text
    batch = r.json()["registrants"]
    urls = {one["join_url"]} | {b["join_url"] for b in batch}
    assert len(urls) == 4 and [b["email"] for b in batch] == [f"p{i}@example.com" for i in range(3)]

    # re-adding the same e-mail returns the same registration
    assert add(api, mid, "ann@example.com").json()["join_url"] == one["join_url"]

    r = api.put(f"{api.base}/meetings/{mid}/registrants/status", json={
        "action": "cancel", "registrants": [{"id": one["registrant_id"]}, {"email": "p0@example.com"}]})
    assert r.status_code == 204
    approved = api.get(f"{api.base}/meetings/{mid}/registrants").json()
    assert approved["total_records"] == 2
    denied = api.get(f"{api.base}/meetings/{mid}/registrants", params={"status": "denied"}).json()
    assert {d["email"] for d in denied["registrants"]} == {"ann@example.com", "p0@example.com"}
    assert len(zoom.registrants_of(mid, "denied")) == 2

    rid = batch[1]["registrant_id"]
    assert api.get(f"{api.base}/meetings/{mid}/registrants/{rid}").json()["email"] == "p1@example.com"
    assert api.delete(f"{api.base}/meetings/{mid}/registrants/{rid}").status_code == 204
    assert api.delete(f"{api.base}/meetings/{mid}/registrants/{rid}").json()["code"] == 3000
    assert add(api, 42, "x@example.com").json() == {"code": 3001, "message": "Meeting does not exist: 42."}
    zoom.assert_clean()


def test_zoom_registration_requires_approval_type(zoom, api):
    mid = make_meeting(api, approval_type=2)["id"]
    r = add(api, mid, "ann@example.com")
    assert r.status_code == 404 and "Registration has not been enabled" in r.json()["message"]


def test_zoom_pagination(zoom, api):
    mid = make_meeting(api)["id"]
    api.post(f"{api.base}/meetings/{mid}/batch_registrants", json={"registrants": [
        {"email": f"p{i}@example.com", "first_name": "P"} for i in range(5)]})
    seen, token = [], ""
    while True:
        page = api.get(f"{api.base}/meetings/{mid}/registrants",
                       params={"page_size": 2, "next_page_token": token} if token else {"page_size": 2}).json()
        seen += [r["email"] for r in page["registrants"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [f"p{i}@example.com" for i in range(5)] and page["page_count"] == 3
    zoom.assert_clean()


def test_zoom_webinar_flow(zoom, api):
    w = make_meeting(api, approval_type=1, kind="webinars")
    wid = w["id"]
    assert w["type"] == 5
    r = add(api, wid, "ann@example.com", kind="webinars")
    assert r.status_code == 201 and r.json()["id"] == str(wid)  # spec: string for webinars
    assert zoom.webinars[wid]["registrants"][0]["status"] == "pending"
    r = api.put(f"{api.base}/webinars/{wid}/registrants/status",
                json={"action": "approve", "registrants": [{"email": "ann@example.com"}]})
    assert r.status_code == 204 and zoom.registrants_of(wid, "approved")
    add(api, wid, "ann@example.com", kind="webinars")  # re-adding never demotes to pending
    assert zoom.registrants_of(wid, "approved") and not zoom.registrants_of(wid, "pending")
    assert api.get(f"{api.base}/meetings/{wid}").status_code == 404
    assert api.delete(f"{api.base}/webinars/{wid}").status_code == 204
    zoom.assert_clean()


def test_zoom_invalid_requests_are_answered_and_recorded(zoom, api):
    r = api.post(f"{api.base}/users/me/meetings", json={"topic": "x", "duration": "60"})
    assert r.status_code == 400 and r.json()["code"] == 300 and "duration" in r.json()["message"]
    r = api.post(f"{api.base}/meetings/123/registrants", json={"email": "not-an-email", "first_name": "A"})
    assert r.status_code == 400 and "email" in r.json()["message"]
    assert api.get(f"{api.base}/meetings/abc").status_code == 400
    assert api.get(f"{api.base}/meetings/1/registrants", params={"status": "cancelled"}).status_code == 400
    assert api.get(f"{api.base}/no/such/endpoint").status_code == 404
    assert [(m, p) for m, p, _ in zoom.invalid_requests] == [
        ("POST", "/v2/users/me/meetings"), ("POST", "/v2/meetings/123/registrants"),
        ("GET", "/v2/meetings/abc"), ("GET", "/v2/meetings/1/registrants"),
        ("GET", "/v2/no/such/endpoint")]
    with pytest.raises(AssertionError):
        zoom.assert_clean()


def test_zoom_own_responses_are_validated(zoom, api):
    mid = make_meeting(api)["id"]
    zoom._item = lambda *a, **k: zoom.json_response({"id": "not-an-int"})  # simulate a stand-in bug
    api.get(f"{api.base}/meetings/{mid}")
    assert len(zoom.invalid_responses) == 1 and "not of type 'integer'" in zoom.invalid_responses[0].error


def test_zoom_429_retry_after_forms_and_headers(zoom, api):
    zoom.fail_next(1, status=429, retry_after=2)
    when = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    zoom.fail_next(1, status=429, retry_after=when)
    zoom.fail_next(1, status=429)
    first = api.get(f"{api.base}/meetings/1")
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json()["code"] == 429
    assert first.headers["X-RateLimit-Type"] == "QPS" and first.headers["X-RateLimit-Remaining"] == "0"
    assert first.headers["X-RateLimit-Limit"]
    assert api.get(f"{api.base}/meetings/1").headers["Retry-After"] == "Tue, 01 Jan 2030 12:00:00 GMT"
    assert "Retry-After" not in api.get(f"{api.base}/meetings/1").headers
    assert api.get(f"{api.base}/meetings/1").status_code == 404  # faults used up


def test_zoom_5xx_garbage_empty_and_path_filter(zoom, api):
    zoom.fail_next(1, status=500)
    zoom.fail_next(1, status=200, body=b"<html>oops</html>", content_type="text/html")
    zoom.fail_next(1, status=200, body=b"")
    zoom.fail_next(1, status=503, path_contains="/registrants")
    assert api.get(f"{api.base}/meetings/1").status_code == 500
    r = api.get(f"{api.base}/meetings/1")
    assert r.status_code == 200 and r.text == "<html>oops</html>" and r.headers["Content-Type"].startswith("text/html")
    r = api.get(f"{api.base}/meetings/1")
    assert r.status_code == 200 and r.content == b""
    zoom_token(zoom)  # token endpoint unaffected by API faults
    mid = make_meeting(api)["id"]  # path filter: not a registrant call
    assert add(api, mid, "a@example.com").status_code == 503
    assert add(api, mid, "a@example.com").status_code == 201
    zoom.fail_next(1, status=500, path_contains="/oauth/token")
    assert requests.post(zoom.oauth_url, auth=("cid", "csecret")).status_code == 500
    assert zoom.token_requests == 3  # fixture + explicit + faulted


def test_zoom_random_failures_are_reproducible():
    def statuses():
        with ZoomStandIn(seed=7) as z:
            token = zoom_token(z)
            z.failure_rate = 0.5
            return [requests.get(f"{z.api_base}/meetings/1", headers={
                "Authorization": f"Bearer {token}"}).status_code for _ in range(20)]
    first = statuses()
    assert first == statuses()
    assert set(first) - {404} and set(first) <= {404, 429, 500, 502, 503, 504}


def test_zoom_expired_tokens(zoom, api):
    zoom.expire_tokens()
    r = api.get(f"{api.base}/meetings/1")
    assert r.status_code == 401 and r.json()["code"] == 124
    api.headers["Authorization"] = f"Bearer {zoom_token(zoom)}"
    assert api.get(f"{api.base}/meetings/1").status_code == 404

    now = [1000.0]
    zoom.clock = lambda: now[0]
    api.headers["Authorization"] = f"Bearer {zoom_token(zoom)}"
    now[0] += 3600  # past expires_in
    assert api.get(f"{api.base}/meetings/1").json() == {"code": 124, "message": "Access token is expired."}


def test_zoom_daily_limit_per_email(zoom, api):
    mid = make_meeting(api)["id"]
    day = [datetime(2030, 1, 1, 8, tzinfo=timezone.utc)]
    zoom.utcnow = lambda: day[0]
    for _ in range(3):
        assert add(api, mid, "Same@Example.com").status_code == 201
    r = add(api, mid, "same@example.com")
    assert r.status_code == 429 and r.json()["code"] == 429
    assert "daily rate limit" in r.json()["message"]
    assert r.headers["X-RateLimit-Type"] == "Daily-limit" and r.headers["Retry-After"] == "2030-01-02T00:00:00Z"
    assert add(api, mid, "other@example.com").status_code == 201
    day[0] += timedelta(days=1)
    assert add(api, mid, "same@example.com").status_code == 201
    zoom.assert_clean()


def test_zoom_capacity(zoom, api):
    mid = make_meeting(api)["id"]
    zoom.set_capacity(mid, 2)
    assert add(api, mid, "a@example.com").status_code == 201
    assert add(api, mid, "b@example.com").status_code == 201
    r = add(api, mid, "c@example.com")
    assert r.status_code == 400
    assert r.json() == {"code": 3043, "message": "Meeting has reached maximum attendee capacity."}
    assert add(api, mid, "a@example.com").status_code == 201  # already registered: no new seat
    r = api.post(f"{api.base}/meetings/{mid}/batch_registrants",
                 json={"registrants": [{"email": "d@example.com", "first_name": "D"}]})
    assert r.status_code == 404 and r.json()["code"] == 3043  # the spec puts batch 3043 under 404
    api.put(f"{api.base}/meetings/{mid}/registrants/status",
            json={"action": "cancel", "registrants": [{"email": "a@example.com"}]})
    assert add(api, mid, "c@example.com").status_code == 201  # cancelled seat is free again
    zoom.assert_clean()


def test_zoom_registrant_rate_limit_with_fake_clock(zoom, api):
    mid = make_meeting(api)["id"]
    now = [100.0]
    zoom.clock = lambda: now[0]
    api.headers["Authorization"] = f"Bearer {zoom_token(zoom)}"  # token valid on the fake clock
    zoom.registrant_rate_per_second = 1.0
    assert add(api, mid, "a@example.com").status_code == 201
    r = add(api, mid, "b@example.com")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and r.headers["X-RateLimit-Type"] == "QPS"
    assert api.get(f"{api.base}/meetings/{mid}").status_code == 200  # non-registrant call unaffected
    now[0] += 1.0
    assert add(api, mid, "b@example.com").status_code == 201


def test_zoom_delay_makes_client_time_out(zoom, api):
    zoom.delay_next(1, 5)
    with pytest.raises(requests.Timeout):
        api.get(f"{api.base}/meetings/1", timeout=0.2)


def test_zoom_participants_report(zoom, api):
    mid = make_meeting(api)["id"]
    join = datetime(2030, 1, 1, 10, tzinfo=timezone.utc)
    zoom.add_participant(mid, "Ann Lee", "ann@example.com", join, join + timedelta(minutes=50),
                         registrant_id="r1")
    report = api.get(f"{api.base}/report/meetings/{mid}/participants").json()
    (row,) = report["participants"]
    assert row["user_email"] == "ann@example.com" and row["duration"] == 3000
    assert row["join_time"] == "2030-01-01T10:00:00Z" and "registrant_id" not in row
    report = api.get(f"{api.base}/report/meetings/{mid}/participants",
                     params={"include_fields": "registrant_id"}).json()
    assert report["participants"][0]["registrant_id"] == "r1"
    past = api.get(f"{api.base}/past_meetings/{mid}/participants").json()
    assert past["participants"][0]["name"] == "Ann Lee"
    assert api.get(f"{api.base}/report/meetings/777/participants").json()["code"] == 3001
    zoom.assert_clean()


# -------------------------------------------------------------------- Graph
@pytest.fixture
def graph():
    with GraphStandIn() as server:
        yield server


def graph_token(graph, **overrides):
    form = {"client_id": "cid", "client_secret": "csecret", "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default", **overrides}
    return requests.post(graph.token_url, data=form)


@pytest.fixture
def gapi(graph):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {graph_token(graph).json()['access_token']}"
    session.base = f"{graph.api_base}/users/u1/onlineMeetings"
    return session


MEETING = {"startDateTime": "2030-01-01T10:00:00+01:00", "endDateTime": "2030-01-01T11:30:00+01:00",
           "subject": "Seminar"}


def test_graph_token_flow(graph):
    body = graph_token(graph).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"]
    assert graph.token_url.endswith("/tenant/oauth2/v2.0/token")
    r = graph_token(graph, client_secret="nope")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert graph_token(graph, client_id="x").json()["error"] == "unauthorized_client"
    assert graph_token(graph, scope="User.Read").json()["error"] == "invalid_scope"
    assert graph.token_requests == 4 and len(graph.invalid_requests) == 1
    r = requests.get(f"{graph.api_base}/users/u1/onlineMeetings/x")
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_graph_meeting_lifecycle(graph, gapi):
    r = gapi.post(gapi.base, json={**MEETING, "lobbyBypassSettings": {"scope": "everyone"},
                                   "allowedPresenters": "organizer"})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    m = r.json()
    assert m["startDateTime"] == "2030-01-01T09:00:00.0000000Z"
    assert m["endDateTime"] == "2030-01-01T10:30:00.0000000Z"
    assert m["joinWebUrl"].startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
    assert m["lobbyBypassSettings"] == {"scope": "everyone", "isDialInBypassEnabled": False}
    assert m["allowedPresenters"] == "organizer" and m["joinInformation"]["contentType"] == "html"
    assert m["id"] in graph.meetings and m["creationDateTime"].endswith("Z")
    url = f"{gapi.base}/{m['id']}"
    assert gapi.get(url).json()["subject"] == "Seminar"

    r = gapi.patch(url, json={"subject": "Renamed", "startDateTime": "2030-01-02T09:00:00Z",
                              "endDateTime": "2030-01-02T10:00:00Z",
                              "lobbyBypassSettings": {"isDialInBypassEnabled": True}})
    assert r.status_code == 200 and r.json()["subject"] == "Renamed"
    assert r.json()["lobbyBypassSettings"] == {"scope": "everyone", "isDialInBypassEnabled": True}
    assert gapi.get(url).json()["startDateTime"] == "2030-01-02T09:00:00.0000000Z"

    other = requests.get(f"{graph.api_base}/users/u2/onlineMeetings/{m['id']}", headers=gapi.headers)
    assert other.status_code == 404
    assert gapi.delete(url).status_code == 204
    r = gapi.get(url)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
    assert gapi.patch(url, json={"subject": "x"}).status_code == 404
    graph.assert_clean()


@pytest.mark.parametrize("body", [
    {"startDateTime": MEETING["startDateTime"], "subject": "no end"},
    {**MEETING, "startDateTime": "2030-01-01T10:00:00"},  # no offset
    {**MEETING, "startDateTime": "01/01/2030 10:00"},
    {**MEETING, "subject": 42},
    {**MEETING, "foo": 1},
    {**MEETING, "lobbyBypassSettings": {"scope": "nobody"}},
    {**MEETING, "allowedPresenters": "all"},
    {**MEETING, "isEntryExitAnnounced": "yes"},
    {**MEETING, "endDateTime": "2030-01-01T09:00:00+01:00"},
])
def test_graph_invalid_create(graph, gapi, body):
    r = gapi.post(gapi.base, json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    assert len(graph.invalid_requests) == 1 and not graph.meetings


def test_graph_invalid_patch_and_payload(graph, gapi):
    mid = gapi.post(gapi.base, json=MEETING).json()["id"]
    assert gapi.patch(f"{gapi.base}/{mid}", json={"startDateTime": "2030-01-01T10:00:00Z"}).status_code == 400
    assert gapi.patch(f"{gapi.base}/{mid}", json={"joinMeetingIdSettings": {"isPasscodeRequired": True}}).status_code == 400
    assert gapi.post(gapi.base, data="{not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert gapi.put(f"{gapi.base}/{mid}", json=MEETING).status_code == 405
    assert len(graph.invalid_requests) == 4


def test_graph_faults_and_expiry(graph, gapi):
    graph.fail_next(1, status=429, retry_after=3)
    graph.fail_next(1, status=503)
    graph.fail_next(1, status=200, body=b"<html>", content_type="text/html")
    r = gapi.post(gapi.base, json=MEETING)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["error"]["code"] == "TooManyRequests"
    assert gapi.post(gapi.base, json=MEETING).json()["error"]["code"] == "ServiceUnavailable"
    assert gapi.post(gapi.base, json=MEETING).text == "<html>"
    assert gapi.post(gapi.base, json=MEETING).status_code == 201
    graph.expire_tokens()
    r = gapi.get(f"{gapi.base}/x")
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    assert graph_token(graph).status_code == 200  # token endpoint unaffected


def test_graph_rate_limit_with_fake_clock(graph, gapi):
    now = [50.0]
    graph.clock = lambda: now[0]
    gapi.headers["Authorization"] = f"Bearer {graph_token(graph).json()['access_token']}"
    graph.rate_per_second = 2.0
    assert gapi.post(gapi.base, json=MEETING).status_code == 201
    r = gapi.post(gapi.base, json=MEETING)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    now[0] += 0.5
    assert gapi.post(gapi.base, json=MEETING).status_code == 201
    graph.assert_clean()
