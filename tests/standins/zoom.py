"""Zoom API stand-in: Server-to-Server OAuth + meetings/webinars/registrants/reports.

Every API request is validated with openapi-core against Zoom's published
OpenAPI document (invalid ones -> 400 {"code":300,...} and recorded in
``invalid_requests``); every response produced for a valid request is
validated against the same document (violations -> ``invalid_responses``).
"""
from __future__ import annotations

import functools
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

from . import StandInServer, format_retry_after

# $ZOOM_OPENAPI_SPEC first; else a copy beside this file; else the shared/ folder that sits next
# to the repository (a fresh clone in CI has ../shared beside it), found relative to this file.
# Zoom's published OpenAPI description (the subset the team keeps in ../shared/zoom). The shared
# one wins when the checkout sits beside it; the copy kept here lets a clone anywhere run the tests.
SPEC_CANDIDATES = (
    os.environ.get("ZOOM_OPENAPI_SPEC", ""),
    str(Path(__file__).resolve().parents[3] / "shared" / "zoom" / "zoom-meeting-api.subset.json"),
    str(Path(__file__).with_name("zoom-meeting-api.subset.json")),
)
JOIN_HOST = "https://us06web.zoom.us"
KINDS = "<any(meetings,webinars):kind>"
ROUTES = Map([
    Rule(f"/v2/users/<user_id>/{KINDS}", endpoint="collection", methods=["GET", "POST"]),
    Rule(f"/v2/{KINDS}/<mid>", endpoint="item", methods=["GET", "PATCH", "DELETE"]),
    Rule(f"/v2/{KINDS}/<mid>/registrants", endpoint="registrants", methods=["GET", "POST"]),
    Rule(f"/v2/{KINDS}/<mid>/batch_registrants", endpoint="batch", methods=["POST"]),
    Rule(f"/v2/{KINDS}/<mid>/registrants/status", endpoint="status", methods=["PUT"]),
    Rule(f"/v2/{KINDS}/<mid>/registrants/<rid>", endpoint="registrant", methods=["GET", "DELETE"]),
    Rule(f"/v2/past_{KINDS}/<mid>/participants", endpoint="participants", methods=["GET"]),
    Rule(f"/v2/report/{KINDS}/<mid>/participants", endpoint="report", methods=["GET"]),
])
VALIDATION_LOCK = threading.Lock()  # the cached OpenAPI object is shared between servers
INTERNAL_KEYS = {"registrants", "owner"}  # kept in .meetings/.webinars, never serialized
LOCAL_OR_ZULU = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$"
QPS_MESSAGE = "You have reached the maximum per-second rate limit for this API. Try again later."


@functools.lru_cache(maxsize=4)
def load_openapi(path: str) -> OpenAPI:
    spec = json.loads(Path(path).read_text())
    spec["servers"] = [{"url": "/v2"}]  # match any host, keep the /v2 prefix
    spec.pop("security", None)  # auth is checked by the stand-in itself
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                op.pop("security", None)  # oauth2 schemes only produce warnings
    # The schema says format "date-time" (RFC 3339) for start_time, but the
    # description (and Zoom) also accept local "yyyy-MM-ddTHH:mm:ss" + `timezone`.
    for path in ("/users/{userId}/meetings", "/meetings/{meetingId}",
                 "/users/{userId}/webinars", "/webinars/{webinarId}"):
        for op in spec["paths"][path].values():
            if isinstance(op, dict) and "requestBody" in op:
                props = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
                props["start_time"].pop("format", None)
                props["start_time"]["pattern"] = LOCAL_OR_ZULU
    return OpenAPI.from_dict(spec)


def _describe(exc: Exception) -> str:
    cause = exc.__cause__
    errors = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
    if errors:
        head = str(exc).split(":")[0]
        return head + ": " + "; ".join(
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)
    return f"{exc}: {cause}" if cause and str(cause) not in str(exc) else str(exc)


def _zulu(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class ZoomError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ZoomStandIn(StandInServer):
    json_content_type = "application/json;charset=UTF-8"

    def __init__(self, account_id="acct", client_id="cid", client_secret="csecret", *,
                 seed=1234, spec_path=None, known_users=None, daily_registrant_limit=3,
                 default_capacity=4999):
        super().__init__(seed=seed)
        self.account_id, self.client_id, self.client_secret = account_id, client_id, client_secret
        path = spec_path or next((p for p in SPEC_CANDIDATES if p and os.path.exists(p)), None)
        if path is None:
            raise FileNotFoundError(f"Zoom OpenAPI document not found; tried {SPEC_CANDIDATES}")
        self.openapi = load_openapi(str(path))
        self.known_users = set(known_users) if known_users else None
        self.daily_registrant_limit = daily_registrant_limit
        self.default_capacity = default_capacity
        self.rate_limit_path_contains = "registrants"
        self.meetings: dict[int, dict] = {}
        self.webinars: dict[int, dict] = {}
        self.deleted: dict[int, dict] = {}
        self.capacity: dict[int, int] = {}
        self.participants: dict[int, list] = {}
        self.daily_counts: dict[tuple, int] = {}
        self._page_tokens: dict[str, int] = {}

    # ------------------------------------------------------------ public API
    @property
    def api_base(self):
        return f"{self.base_url}/v2"

    @property
    def oauth_url(self):
        return f"{self.base_url}/oauth/token"

    @property
    def registrant_rate_per_second(self):
        return self.rate_per_second

    @registrant_rate_per_second.setter
    def registrant_rate_per_second(self, value):
        self.rate_per_second = value

    def set_capacity(self, meeting_id, n):
        with self.lock:
            self.capacity[int(meeting_id)] = n

    def add_participant(self, meeting_id, name, email, join_time, leave_time, *,
                        registrant_id=None, user_id=""):
        join, leave = _parse(join_time), _parse(leave_time)
        with self.lock:
            self.participants.setdefault(int(meeting_id), []).append({
                "id": self._token(22), "user_id": str(user_id), "name": name, "user_email": email,
                "join_time": _zulu(join), "leave_time": _zulu(leave),
                "duration": int((leave - join).total_seconds()),
                "registrant_id": registrant_id or "", "status": "in_meeting", "failover": False})

    def registrants_of(self, meeting_id, status=None):
        m = self.meetings.get(int(meeting_id)) or self.webinars.get(int(meeting_id))
        return [r for r in m["registrants"] if status is None or r["status"] == status]

    # ------------------------------------------------------------ hooks
    def is_token_path(self, path):
        return path == "/oauth/token"

    def handle_token(self, request):
        params = {**request.args.to_dict(), **request.form.to_dict()}
        auth = request.authorization
        if not auth or auth.type != "basic" or (auth.username, auth.password) != (
                self.client_id, self.client_secret):
            return self.json_response(
                {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, 401)
        if request.method != "POST" or params.get("grant_type") != "account_credentials":
            self.record_invalid(request, f"unsupported grant_type {params.get('grant_type')!r}")
            return self.json_response(
                {"reason": "unsupported grant type", "error": "unsupported_grant_type"}, 400)
        if params.get("account_id") != self.account_id:
            return self.json_response(
                {"reason": "Invalid request : Bad Request", "error": "invalid_request"}, 400)
        return self.json_response({
            "access_token": self.issue_token(), "token_type": "bearer",
            "expires_in": self.token_lifetime, "api_url": self.base_url,
            "scope": "meeting:read:admin meeting:write:admin webinar:read:admin "
                     "webinar:write:admin report:read:admin user:read:admin"})

    def validate_request(self, request):
        try:
            with VALIDATION_LOCK:
                self.openapi.validate_request(WerkzeugOpenAPIRequest(request))
        except PathNotFound:
            return 404, f"No such endpoint: {request.path}"
        except OperationNotFound:
            return 405, f"Method {request.method} not supported for {request.path}"
        except Exception as exc:  # openapi-core validation errors
            return 400, _describe(exc)
        return None

    def check_response(self, request, response):
        try:
            with VALIDATION_LOCK:
                self.openapi.validate_response(
                    WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
        except Exception as exc:
            return _describe(exc)
        return None

    def auth_error(self, state):
        message = "Access token is expired." if state == "expired" else "Invalid access token."
        return self.json_response({"code": 124, "message": message}, 401)

    def invalid_error(self, status, message):
        code = 300 if status == 400 else status
        return self.json_response({"code": code, "message": message}, status)

    def fault_body(self, status):
        if status == 429:
            return json.dumps({"code": 429, "message": QPS_MESSAGE}).encode()
        return json.dumps({"code": status, "message": "Internal Error."}).encode()

    def fault_headers(self, status):
        if status != 429:
            return {}
        return {"X-RateLimit-Category": "Light", "X-RateLimit-Type": "QPS",
                "X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "0"}

    def rate_limited_response(self, wait_seconds):
        headers = {**self.fault_headers(429),
                   "Retry-After": format_retry_after(max(wait_seconds, 1))}
        return self.json_response({"code": 429, "message": QPS_MESSAGE}, 429, headers)

    def handle_api(self, request):
        try:
            endpoint, args = ROUTES.bind("stand-in").match(request.path, request.method)
        except HTTPException:
            return self.json_response({"code": 501, "message": "not implemented"}, 501)
        body = request.get_json(silent=True) or {}
        try:
            return getattr(self, f"_{endpoint}")(request, body, **args)
        except ZoomError as err:
            return self.json_response({"code": err.code, "message": err.message},
                                      err.status, err.headers)

    # ------------------------------------------------------------ helpers
    def _token(self, n):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        return "".join(self.id_rng.choices(alphabet, k=n))

    def _new_id(self):
        while True:
            mid = self.id_rng.randint(81_000_000_000, 99_999_999_999)
            if mid not in self.meetings and mid not in self.webinars and mid not in self.deleted:
                return mid

    def _store(self, kind):
        return self.meetings if kind == "meetings" else self.webinars

    def _get(self, kind, mid, status=404):
        m = self._store(kind).get(int(mid)) if str(mid).isdigit() else None
        if m is None:
            noun = "Meeting" if kind == "meetings" else "Webinar"
            raise ZoomError(status, 3001, f"{noun} does not exist: {mid}.")
        return m

    def _public(self, m):
        return {k: v for k, v in m.items() if k not in INTERNAL_KEYS}

    def _start_time(self, value, tz):
        if not value:
            return _zulu(self.utcnow())
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:  # Zoom: local time in `timezone` (UTC if none)
            dt = dt.replace(tzinfo=ZoneInfo(tz) if tz else timezone.utc)
        return _zulu(dt)

    def _paginate(self, items, args):
        size = int(args.get("page_size", 30))
        token = args.get("next_page_token")
        if token:
            if token not in self._page_tokens:
                raise ZoomError(400, 300, "The next page token is invalid or expired.")
            start = self._page_tokens[token]
        else:
            start = (int(args.get("page_number", 1)) - 1) * size
        nxt = ""
        if start + size < len(items):
            nxt = self._token(32)
            self._page_tokens[nxt] = start + size
        return {"page_count": max(1, -(-len(items) // size)), "page_size": size,
                "total_records": len(items), "next_page_token": nxt}, items[start:start + size]

    def _count_daily(self, api, mid, email):
        limit = self.daily_registrant_limit
        key = (api, int(mid), email.lower(), self.utcnow().date())
        used = self.daily_counts.get(key, 0)
        if limit is not None and used >= limit:
            tomorrow = datetime.combine(key[3] + timedelta(days=1), datetime.min.time(),
                                        tzinfo=timezone.utc)
            label = {"add": "Add meeting registrant", "batch": "Perform batch registration",
                     "status": "Update registrant's status"}[api]
            raise ZoomError(429, 429, (
                f'You have exceeded the daily rate limit of "{limit}" for {label} API requests '
                f'for the registrant "{email}". '
                "You can resume these API requests at GMT 00:00:00."),
                {"X-RateLimit-Type": "Daily-limit", "X-RateLimit-Limit": str(limit),
                 "X-RateLimit-Remaining": "0", "Retry-After": _zulu(tomorrow)})
        return key, used

    def _capacity(self, m):
        if m["id"] in self.capacity:
            return self.capacity[m["id"]]
        cap = m["settings"].get("registrants_restrict_number") or self.default_capacity
        return float("inf") if cap is None else cap

    def _require_registration(self, kind, m):
        if m["settings"].get("approval_type", 2) != 2:
            return
        if kind == "webinars":
            raise ZoomError(400, 3000, f"Registration not enabled for this webinar: {m['id']}")
        raise ZoomError(404, 404, f"Registration has not been enabled for this meeting: {m['id']}")

    def _register(self, m, person, approved):
        """Add (or re-add) one person; returns the registrant record."""
        email = person["email"]
        for reg in m["registrants"]:
            if reg["email"].lower() == email.lower():
                reg.update({k: v for k, v in person.items() if k != "auto_approve"})
                approved = approved or reg["status"] == "approved"  # never demote
                reg["status"] = "approved" if approved else "pending"
                return reg
        rid = self._token(22)
        reg = {"id": rid, "email": email, "first_name": person.get("first_name", ""),
               "last_name": person.get("last_name", ""),
               "status": "approved" if approved else "pending",
               "create_time": _zulu(self.utcnow()), "custom_questions": [],
               "join_url": f"{JOIN_HOST}/w/{m['id']}?tk={self._token(40)}"}
        reg.update({k: v for k, v in person.items() if k not in reg and k != "auto_approve"})
        m["registrants"].append(reg)
        return reg

    def _active(self, m):
        return {r["email"].lower() for r in m["registrants"] if r["status"] != "denied"}

    # ------------------------------------------------------------ endpoints
    def _collection(self, request, body, user_id, kind):
        if self.known_users is not None and user_id not in self.known_users | {"me"}:
            raise ZoomError(404, 1001, f"User {user_id} not exist or not belong to this account.")
        if request.method == "GET":
            mine = [self._public(m) for m in self._store(kind).values() if m["owner"] == user_id]
            page, items = self._paginate(mine, request.args)
            return self.json_response({**page, kind: items})
        webinar = kind == "webinars"
        mid, mtype = self._new_id(), body.get("type", 5 if webinar else 2)
        settings = {"approval_type": 2, "registration_type": 1, "audio": "both",
                    "auto_recording": "none", "host_video": False, "close_registration": False,
                    "meeting_authentication": False, "registrants_email_notification": True,
                    "registrants_confirmation_email": True, "show_share_button": False,
                    "allow_multiple_devices": False, "alternative_hosts": "",
                    **({} if webinar else {"participant_video": False, "join_before_host": False,
                                           "mute_upon_entry": False, "waiting_room": False}),
                    **body.get("settings", {})}
        host_email = user_id if "@" in user_id else "host@example.com"
        m = {"uuid": self._token(22) + "==", "id": mid, "host_id": "HostId" + self._token(16),
             "host_email": host_email, "topic": body.get("topic", "Zoom Webinar" if webinar
                                                            else "Zoom Meeting"),
             "type": mtype, "duration": body.get("duration", 60),
             "timezone": body.get("timezone", "UTC"), "agenda": body.get("agenda", ""),
             "created_at": _zulu(self.utcnow()),
             "start_url": f"{JOIN_HOST}/s/{mid}?zak={self._token(60)}",
             "join_url": f"{JOIN_HOST}/{'w' if webinar else 'j'}/{mid}?pwd={self._token(32)}",
             "password": body.get("password", str(self.id_rng.randint(100000, 999999))),
             "settings": settings, "pre_schedule": False, "registrants": [], "owner": user_id}
        if mtype not in (3, 6):  # recurring without fixed time has no start_time
            m["start_time"] = self._start_time(body.get("start_time"), body.get("timezone"))
        if not webinar:
            m.update(status="waiting", h323_password=m["password"], pstn_password=m["password"],
                     encrypted_password=self._token(32))
        if body.get("recurrence"):
            m["recurrence"] = body["recurrence"]
        if settings["approval_type"] != 2:
            m["registration_url"] = f"{JOIN_HOST}/meeting/register/{self._token(36)}"
        self._store(kind)[mid] = m
        return self.json_response(self._public(m), 201)

    def _item(self, request, body, kind, mid):
        m = self._get(kind, mid)
        if request.method == "GET":
            return self.json_response(self._public(m))
        if request.method == "DELETE":
            self.deleted[m["id"]] = self._store(kind).pop(m["id"])
            return Response(status=204)
        for key, value in body.items():
            if key == "settings":
                m["settings"].update(value)
            elif key == "start_time":
                m["start_time"] = self._start_time(value, body.get("timezone", m["timezone"]))
            elif key != "schedule_for":
                m[key] = value
        if m["settings"].get("approval_type", 2) != 2 and "registration_url" not in m:
            m["registration_url"] = f"{JOIN_HOST}/meeting/register/{self._token(36)}"
        return Response(status=204)

    def _registrants(self, request, body, kind, mid):
        m = self._get(kind, mid)
        if request.method == "GET":
            self._require_registration(kind, m)
            wanted = request.args.get("status", "approved")
            page, items = self._paginate(
                [r for r in m["registrants"] if r["status"] == wanted], request.args)
            return self.json_response({**page, "page_number": 1, "registrants": items})
        self._require_registration(kind, m)
        key, used = self._count_daily("add", m["id"], body["email"])
        self.daily_counts[key] = used + 1
        active = self._active(m)
        if body["email"].lower() not in active and len(active) >= self._capacity(m):
            noun = "Meeting" if kind == "meetings" else "Webinar"
            raise ZoomError(400, 3043, f"{noun} has reached maximum attendee capacity.")
        approved = m["settings"].get("approval_type") == 0 or body.get("auto_approve") is True
        reg = self._register(m, body, approved)
        # spec quirk: the meeting variant returns the meeting id as int64, the webinar one as string
        out = {"id": m["id"] if kind == "meetings" else str(m["id"]), "registrant_id": reg["id"],
               "join_url": reg["join_url"], "topic": m["topic"], "occurrences": []}
        if "start_time" in m:
            out["start_time"] = m["start_time"]
        return self.json_response(out, 201)

    def _batch(self, request, body, kind, mid):
        m = self._get(kind, mid)
        self._require_registration(kind, m)
        if kind == "meetings" and m["type"] != 2:
            raise ZoomError(400, 303, "This API can only be used for scheduled meeting(meeting "
                                      "type: 2). Batch registration is not supported for other "
                                      "meeting types.")
        if kind == "webinars" and m["type"] != 5:
            raise ZoomError(400, 300, "This API can only be used for scheduled webinars (type 5).")
        people = body.get("registrants", [])
        if not people or len(people) > 30:
            self.record_invalid(request, f"batch needs 1..30 registrants, got {len(people)}")
            raise ZoomError(400, 300, "Registrants must contain between 1 and 30 entries.")
        counts = [self._count_daily("batch", m["id"], p["email"]) for p in people]
        for key, used in counts:
            self.daily_counts[key] = used + 1
        active = self._active(m)
        new = {p["email"].lower() for p in people} - active
        if len(active) + len(new) > self._capacity(m):
            noun = "Meeting" if kind == "meetings" else "Webinar"
            raise ZoomError(404, 3043, f"{noun} has reached maximum attendee capacity.")
        approved = m["settings"].get("approval_type") == 0 or body.get("auto_approve") is True
        regs = [self._register(m, p, approved) for p in people]
        return self.json_response({"registrants": [
            {"registrant_id": r["id"], "email": r["email"], "join_url": r["join_url"]}
            for r in regs]})

    def _status(self, request, body, kind, mid):
        m = self._get(kind, mid)
        if m["settings"].get("approval_type", 2) == 2:
            raise ZoomError(400, 300, f"This meeting has not set registration as required:{mid}.")
        refs = body.get("registrants") or []
        if not refs or len(refs) > 30:
            self.record_invalid(request, f"status needs 1..30 registrants, got {len(refs)}")
            raise ZoomError(400, 300, "Registrants must contain between 1 and 30 entries.")
        targets = []
        for ref in refs:
            match = [r for r in m["registrants"] if r["id"] == ref.get("id") or (
                ref.get("email") and r["email"].lower() == ref["email"].lower())]
            if not match:
                who = ref.get("id") or ref.get("email")
                raise ZoomError(404, 3000, f"Registrant {who} was not found.")
            targets.append(match[0])
        counts = [self._count_daily("status", m["id"], r["email"]) for r in targets]
        for key, used in counts:
            self.daily_counts[key] = used + 1
        new_status = {"approve": "approved", "deny": "denied", "cancel": "denied"}[body["action"]]
        if new_status == "approved" and kind == "webinars":
            active = self._active(m) | {r["email"].lower() for r in targets}
            if len(active) > self._capacity(m):
                raise ZoomError(400, 3035, "Webinar has reached maximum attendee capacity.")
        for reg in targets:
            reg["status"] = new_status
        return Response(status=204)

    def _registrant(self, request, body, kind, mid, rid):
        deleting = request.method == "DELETE"
        m = self._get(kind, mid, status=400 if deleting else 404)  # spec: DELETE has no 404
        reg = next((r for r in m["registrants"] if r["id"] == rid), None)
        if reg is None:
            raise ZoomError(400 if deleting else 404, 3000, f"Registrant {rid} was not found.")
        if deleting:
            m["registrants"].remove(reg)
            return Response(status=204)
        return self.json_response(reg)

    def _participant_list(self, kind, mid, args):
        m = self._store(kind).get(int(mid)) if str(mid).isdigit() else next(
            (x for x in self._store(kind).values() if x["uuid"] == mid), None)
        key = m["id"] if m else (int(mid) if str(mid).isdigit() else None)
        if m is None and key not in self.participants:
            raise ZoomError(404, 3001, f"{kind[:-1].capitalize()} does not exist: {mid}.")
        return self._paginate(self.participants.get(key, []), args)

    def _participants(self, request, body, kind, mid):
        page, items = self._participant_list(kind, mid, request.args)
        slim = [{"id": p["id"], "name": p["name"], "user_email": p["user_email"]} for p in items]
        return self.json_response({**page, "participants": slim})

    def _report(self, request, body, kind, mid):
        page, items = self._participant_list(kind, mid, request.args)
        with_rid = request.args.get("include_fields") == "registrant_id"
        rows = [{k: v for k, v in p.items() if with_rid or k != "registrant_id"} for p in items]
        return self.json_response({**page, "participants": rows})
