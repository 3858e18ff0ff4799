"""Microsoft Graph stand-in: client-credentials token + /users/{id}/onlineMeetings, and the
meetings' attendance reports (.../attendanceReports[/{id}/attendanceRecords]) in the documented
meetingAttendanceReport / attendanceRecord / attendanceInterval shape, paged with @odata.nextLink
(https://learn.microsoft.com/graph/api/resources/meetingattendancereport).

Requests are checked by hand against the documented onlineMeeting shape
(https://learn.microsoft.com/graph/api/resources/onlinemeeting); invalid ones
get 400 {"error":{"code":"BadRequest",...}} and are recorded in
``invalid_requests``.
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

from werkzeug.wrappers import Response

from . import StandInServer

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
API_PATH = re.compile(r"^/v1\.0/users/([^/]+)/onlineMeetings(?:/([^/]+))?$")
REPORTS_PATH = re.compile(
    r"^/v1\.0/users/([^/]+)/onlineMeetings/([^/]+)/attendanceReports(?:/([^/]+)(/attendanceRecords)?)?$")
RECORD_ROLES = {"Organizer", "Presenter", "Attendee", "Producer", "Coorganizer", "Unknown"}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$")
BOOL_FIELDS = {
    "allowAttendeeToEnableCamera", "allowAttendeeToEnableMic", "allowTeamworkReactions",
    "allowParticipantsToChangeName", "isEntryExitAnnounced", "recordAutomatically",
    "allowRecording", "allowTranscription", "allowBreakoutRooms", "allowPowerPointSharing",
    "allowWhiteboard", "allowCopyingAndSharingMeetingContent", "isBroadcast"}
ENUMS = {
    "allowedPresenters": {"everyone", "organization", "roleIsPresenter", "organizer"},
    "allowMeetingChat": {"enabled", "disabled", "limited"},
    "allowLiveShare": {"enabled", "disabled"},
    "shareMeetingChatHistoryDefault": {"all", "none"},
    "allowedLobbyAdmitters": {"organizerAndCoOrganizersAndPresenters", "organizerAndCoOrganizers"},
}
LOBBY_SCOPES = {"organizer", "organization", "organizationAndFederated", "everyone", "invited",
                "organizationExcludingGuests"}
ROLES = {"attendee", "presenter", "producer", "coorganizer"}
OBJECT_FIELDS = {"startDateTime", "endDateTime", "subject", "participants", "lobbyBypassSettings",
                 "watermarkProtection", "broadcastSettings", "@odata.type"}
READ_ONLY = {"id", "creationDateTime", "joinWebUrl", "joinUrl", "joinInformation", "chatInfo",
             "audioConferencing", "videoTeleconferenceId", "@odata.context"}


def _parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _graph_dt(dt: datetime) -> str:
    """Graph style: UTC with 7 fractional digits, e.g. 2019-07-11T02:17:17.6491364Z."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond:06d}0Z"


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


class GraphError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class GraphStandIn(StandInServer):
    json_content_type = ("application/json;odata.metadata=minimal;odata.streaming=true;"
                         "IEEE754Compatible=false;charset=utf-8")

    def __init__(self, tenant="tenant", client_id="cid", client_secret="csecret", *,
                 seed=1234, known_users=None):
        super().__init__(seed=seed)
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.known_users = set(known_users) if known_users else None
        self.meetings: dict[str, dict] = {}
        self.owners: dict[str, str] = {}
        self.deleted: dict[str, dict] = {}
        self.reports: dict[str, list[dict]] = {}  # meeting id -> attendance reports with records
        self.records_page_size = 2  # small, so callers must follow @odata.nextLink

    @property
    def token_url(self):
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    @property
    def api_base(self):
        return f"{self.base_url}/v1.0"

    # ------------------------------------------------------------ responses
    def _request_id(self):
        return str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4))

    def json_response(self, body, status=200, headers=None):
        headers = {"request-id": self._request_id(), **(headers or {})}
        return super().json_response(body, status, headers)

    def graph_error(self, status, code, message, headers=None):
        inner = {"date": self.utcnow().strftime("%Y-%m-%dT%H:%M:%S"),
                 "request-id": self._request_id(), "client-request-id": self._request_id()}
        return self.json_response(
            {"error": {"code": code, "message": message, "innerError": inner}}, status, headers)

    def _aad_error(self, status, error, code, description):
        return self.json_response({
            "error": error, "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code], "timestamp": self.utcnow().strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": self._request_id(), "correlation_id": self._request_id()}, status)

    # ------------------------------------------------------------ hooks
    def is_token_path(self, path):
        return bool(TOKEN_PATH.match(path))

    def handle_token(self, request):
        tenant = TOKEN_PATH.match(request.path).group(1)
        form = request.form
        auth = request.authorization  # client_secret_basic is allowed too
        client_id = form.get("client_id") or (auth.username if auth else None)
        secret = form.get("client_secret") or (auth.password if auth else None)
        if request.method != "POST" or form.get("grant_type") != "client_credentials":
            self.record_invalid(
                request, f"grant_type must be client_credentials, got {form.get('grant_type')!r}")
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        if tenant != self.tenant:
            return self._aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if client_id != self.client_id:
            return self._aad_error(400, "unauthorized_client", 700016,
                                   f"Application with identifier '{client_id}' was not found "
                                   f"in the directory '{tenant}'.")
        if secret != self.client_secret:
            return self._aad_error(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent "
                                   "in the request is the client secret value, not the client "
                                   "secret ID.")
        if form.get("scope") != GRAPH_SCOPE:
            self.record_invalid(request, f"scope must be {GRAPH_SCOPE}, got {form.get('scope')!r}")
            return self._aad_error(400, "invalid_scope", 1002012,
                                   f"The provided value for scope {form.get('scope')} is not "
                                   "valid. Client credential flows must have a scope value with "
                                   "/.default suffixed to the resource identifier.")
        return self.json_response({"token_type": "Bearer", "expires_in": self.token_lifetime,
                                   "ext_expires_in": self.token_lifetime,
                                   "access_token": self.issue_token()})

    def auth_error(self, state):
        message = {"missing": "Access token is empty.",
                   "expired": "Access token has expired or is not yet valid.",
                   }.get(state, "IDX14100: JWT is not well formed, there are no dots (.).")
        return self.graph_error(401, "InvalidAuthenticationToken", message, {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline'
                                '.com/common/oauth2/authorize", client_id="00000003-0000-0000-'
                                'c000-000000000000"'})

    def invalid_error(self, status, message):
        code = {405: "MethodNotAllowed"}.get(status, "BadRequest")
        return self.graph_error(status, code, message)

    def fault_body(self, status):
        code, message = {
            429: ("TooManyRequests", "Too many requests."),
            500: ("InternalServerError", "An internal server error occurred."),
            502: ("BadGateway", "Bad gateway."),
            503: ("ServiceUnavailable", "The service is temporarily unavailable."),
            504: ("GatewayTimeout", "The gateway timed out."),
        }.get(status, ("UnknownError", "An unknown error occurred."))
        return json.dumps({"error": {"code": code, "message": message}}).encode()

    def rate_limited_response(self, wait_seconds):
        return self.graph_error(429, "TooManyRequests", "Too many requests.",
                                {"Retry-After": str(max(1, int(wait_seconds + 0.999)))})

    def validate_request(self, request):
        if REPORTS_PATH.match(request.path):
            if request.method != "GET":
                return 405, f"The HTTP method '{request.method}' is not allowed for {request.path}."
            unknown = set(request.args) - {"$skiptoken", "$top", "$expand", "$select"}
            if unknown:
                return 400, f"Query option(s) {', '.join(sorted(unknown))} are not supported here."
            return None
        match = API_PATH.match(request.path)
        if not match:
            return 400, f"Resource not found for the segment '{request.path}'."
        allowed = ("POST",) if match.group(2) is None else ("GET", "PATCH", "DELETE")
        if request.method not in allowed:
            return 405, f"The HTTP method '{request.method}' is not allowed for {request.path}."
        if request.method not in ("POST", "PATCH"):
            return None
        if request.mimetype != "application/json":
            return 400, f"Content-Type must be application/json, got {request.mimetype!r}."
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return 400, ("Unable to read JSON request payload. Please ensure Content-Type "
                         "header is set and payload is of valid JSON format.")
        problem = self._check_body(body, creating=request.method == "POST")
        return (400, problem) if problem else None

    def _check_body(self, body, creating):
        for key, value in body.items():
            if key in READ_ONLY:
                return f"The property '{key}' is read-only and cannot be set."
            if key == "joinMeetingIdSettings" and not creating:
                return "joinMeetingIdSettings can't be modified after the meeting is created."
            if key in BOOL_FIELDS and not isinstance(value, bool):
                return f"Invalid value for '{key}': expected Boolean, got {value!r}."
            if key in ENUMS and value not in ENUMS[key]:
                return f"Requested value '{value}' was not found for '{key}'."
            known = BOOL_FIELDS | set(ENUMS) | OBJECT_FIELDS | {"joinMeetingIdSettings"}
            if key not in known:
                return (f"The property '{key}' does not exist on type 'microsoft.graph."
                        "onlineMeeting'. Make sure to only use property names that are defined "
                        "by the type.")
        required = {"startDateTime", "endDateTime", "subject"} if creating else set()
        if {"startDateTime", "endDateTime"} & set(body):
            required |= {"startDateTime", "endDateTime"}  # documented for PATCH
        missing = sorted(required - set(body))
        if missing:
            return f"Missing required properties: {', '.join(missing)}."
        for key in ("startDateTime", "endDateTime"):
            if key in body and not (isinstance(body[key], str) and DATETIME.match(body[key])):
                return (f"Invalid {key} {body[key]!r}: expected ISO 8601 date-time with 'Z' "
                        "or a UTC offset.")
        if "startDateTime" in body and (
                _parse_dt(body["endDateTime"]) < _parse_dt(body["startDateTime"])):
            return "endDateTime must not be before startDateTime."
        if "subject" in body and not isinstance(body["subject"], str):
            return f"Invalid subject {body['subject']!r}: expected String."
        return (self._check_lobby(body.get("lobbyBypassSettings"))
                or self._check_participants(body.get("participants"), creating)
                or self._check_join_settings(body.get("joinMeetingIdSettings")))

    @staticmethod
    def _check_lobby(lobby):
        if lobby is None:
            return None
        if not isinstance(lobby, dict) or (
                set(lobby) - {"scope", "isDialInBypassEnabled", "@odata.type"}):
            return f"Invalid lobbyBypassSettings {lobby!r}."
        if "scope" in lobby and lobby["scope"] not in LOBBY_SCOPES:
            return f"Requested value '{lobby['scope']}' not found for lobbyBypassSettings.scope."
        if not isinstance(lobby.get("isDialInBypassEnabled", False), bool):
            return "lobbyBypassSettings.isDialInBypassEnabled must be a Boolean."
        return None

    @staticmethod
    def _check_participants(parts, creating):
        if parts is None:
            return None
        if not isinstance(parts, dict):
            return "participants must be a meetingParticipants object."
        if "organizer" in parts and not creating:
            return "The organizer of the meeting can't be modified after the meeting is created."
        attendees = parts.get("attendees", [])
        if not isinstance(attendees, list):
            return "participants.attendees must be a collection."
        for a in attendees:
            user = a.get("identity", {}).get("user", {}) if isinstance(a, dict) else None
            if user is None or not (a.get("upn") or user.get("id")):
                return f"Invalid attendee {a!r}: needs upn or identity.user.id."
            if "role" in a and a["role"] not in ROLES:
                return f"Requested value '{a['role']}' was not found for onlineMeetingRole."
        return None

    @staticmethod
    def _check_join_settings(settings):
        if settings is None:
            return None
        if not isinstance(settings, dict) or set(settings) - {"isPasscodeRequired"}:
            return "joinMeetingIdSettings only accepts isPasscodeRequired (passcodes are generated)"
        if not isinstance(settings.get("isPasscodeRequired", False), bool):
            return "joinMeetingIdSettings.isPasscodeRequired must be a Boolean."
        return None

    # ------------------------------------------------------------ API
    def handle_api(self, request):
        if REPORTS_PATH.match(request.path):
            return self._attendance(request)
        user, meeting_id = API_PATH.match(request.path).groups()
        try:
            if self.known_users is not None and user not in self.known_users:
                raise GraphError(404, "NotFound", f"User '{user}' was not found.")
            if meeting_id is None:
                return self._create(user, request.get_json())
            meeting = self._get(user, meeting_id)
            if request.method == "GET":
                return self.json_response(meeting)
            if request.method == "DELETE":
                self.deleted[meeting_id] = self.meetings.pop(meeting_id)
                return Response(status=204, headers={"request-id": self._request_id()})
            self._apply(meeting, request.get_json())
            return self.json_response(meeting)
        except GraphError as err:
            return self.graph_error(err.status, err.code, err.message)

    def _get(self, user, meeting_id):
        if meeting_id not in self.meetings or self.owners[meeting_id] != user:
            raise GraphError(404, "NotFound", f"The onlineMeeting '{meeting_id}' was not found.")
        return self.meetings[meeting_id]

    def _random(self, n, alphabet="abcdefghijklmnopqrstuvwxyz0123456789"):
        return "".join(self.id_rng.choices(alphabet, k=n))

    def _create(self, user, body):
        thread = f"19:meeting_{self._random(48)}@thread.v2"
        meeting_id = base64.urlsafe_b64encode(f"1*{user}*0**{thread}".encode()).decode().rstrip("=")
        context = json.dumps({"Tid": self.tenant, "Oid": user}, separators=(",", ":"))
        join = _lower_escapes(f"https://teams.microsoft.com/l/meetup-join/{quote(thread, safe='')}"
                              f"/0?context={quote(context, safe='')}")
        passcode_required = body.get("joinMeetingIdSettings", {}).get("isPasscodeRequired", False)
        meeting = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{user}')"
                              "/onlineMeetings/$entity",
            "id": meeting_id, "creationDateTime": _graph_dt(self.utcnow()),
            "startDateTime": None, "endDateTime": None, "joinWebUrl": join, "subject": None,
            "meetingCode": self._random(12, "0123456789"), "isBroadcast": False,
            "autoAdmittedUsers": "everyoneInCompany", "isEntryExitAnnounced": True,
            "allowedPresenters": "everyone", "allowMeetingChat": "enabled",
            "allowTeamworkReactions": True, "allowAttendeeToEnableMic": True,
            "allowAttendeeToEnableCamera": True, "recordAutomatically": False,
            "allowParticipantsToChangeName": False, "videoTeleconferenceId": None,
            "externalId": None, "broadcastSettings": None, "audioConferencing": None,
            "watermarkProtection": None,
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
            "joinInformation": {"content": "data:text/html," + quote(
                f'<div><a href="{join}">Join the meeting now</a></div>'), "contentType": "html"},
            "joinMeetingIdSettings": {
                "isPasscodeRequired": passcode_required,
                "joinMeetingId": self._random(13, "0123456789"),
                "passcode": self._random(6, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                if passcode_required else None},
            "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
            "participants": {
                "organizer": {"upn": user if "@" in user else None, "role": "presenter",
                              "identity": {"application": None, "device": None, "user": {
                                  "id": user, "displayName": None, "tenantId": self.tenant,
                                  "identityProvider": "AAD"}}},
                "attendees": [], "producers": [], "contributors": []},
        }
        self._apply(meeting, {k: v for k, v in body.items() if k != "joinMeetingIdSettings"})
        self.meetings[meeting_id] = meeting
        self.owners[meeting_id] = user
        return self.json_response(meeting, 201)

    def _apply(self, meeting, body):
        for key, value in body.items():
            if key in ("startDateTime", "endDateTime"):
                meeting[key] = _graph_dt(_parse_dt(value))
            elif key == "lobbyBypassSettings":
                meeting[key].update({k: v for k, v in value.items() if k != "@odata.type"})
            elif key == "participants":
                meeting[key]["attendees"] = value.get("attendees", [])
            elif key != "@odata.type":
                meeting[key] = value

    # ------------------------------------------------------------ attendance reports
    def add_attendance(self, meeting_id, email, name, intervals, *, role="Attendee", report=0,
                       identity_id=None):
        """One person's attendance record in the meeting's report number `report` (a meeting
        started again gets another report). `intervals`: (join, leave) datetimes."""
        reports = self.reports.setdefault(meeting_id, [])
        while len(reports) <= report:
            reports.append({"id": str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4)),
                            "records": []})
        if role not in RECORD_ROLES:
            raise ValueError(role)
        spans = [{"joinDateTime": _graph_dt(a), "leaveDateTime": _graph_dt(b),
                  "durationInSeconds": int((b - a).total_seconds())} for a, b in intervals]
        reports[report]["records"].append({
            "id": email or identity_id, "emailAddress": email,
            "totalAttendanceInSeconds": sum(x["durationInSeconds"] for x in spans), "role": role,
            "identity": {"id": identity_id or str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4)),
                         "displayName": name, "tenantId": self.tenant if email else None},
            "attendanceIntervals": spans})

    def _report_summary(self, report):
        starts = [i["joinDateTime"] for r in report["records"] for i in r["attendanceIntervals"]]
        ends = [i["leaveDateTime"] for r in report["records"] for i in r["attendanceIntervals"]]
        return {"id": report["id"], "totalParticipantCount": len(report["records"]),
                "meetingStartDateTime": min(starts, default=None), "meetingEndDateTime": max(ends, default=None)}

    def _attendance(self, request):
        user, meeting_id, report_id, records = REPORTS_PATH.match(request.path).groups()
        try:
            self._get(user, meeting_id)
            reports = self.reports.get(meeting_id, [])
            context = (f"https://graph.microsoft.com/v1.0/$metadata#users('{user}')/onlineMeetings"
                       f"('{meeting_id}')/attendanceReports")
            if report_id is None:
                return self.json_response({"@odata.context": context,
                                           "value": [self._report_summary(r) for r in reports]})
            report = next((r for r in reports if r["id"] == report_id), None)
            if report is None:
                raise GraphError(404, "NotFound", f"The attendance report '{report_id}' was not found.")
            if not records:
                body = {"@odata.context": context + "/$entity", **self._report_summary(report)}
                if request.args.get("$expand") == "attendanceRecords":
                    body["attendanceRecords"] = report["records"]
                return self.json_response(body)
            skip = int(request.args.get("$skiptoken") or 0)
            page = report["records"][skip:skip + self.records_page_size]
            body = {"@odata.context": context + f"('{report_id}')/attendanceRecords", "value": page}
            if skip + self.records_page_size < len(report["records"]):
                body["@odata.nextLink"] = (f"{self.api_base}/users/{user}/onlineMeetings/{meeting_id}/"
                                           f"attendanceReports/{report_id}/attendanceRecords"
                                           f"?$skiptoken={skip + self.records_page_size}")
            return self.json_response(body)
        except GraphError as err:
            return self.graph_error(err.status, err.code, err.message)
