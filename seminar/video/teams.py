"""Microsoft Teams through Microsoft Graph: one online meeting per seminar, created for the
organiser user (TEAMS_USER_ID) with an app's client-credentials token.

What Teams cannot do here: Graph has no per-attendee join links for online meetings, so every
attendee's link is the meeting's shared `joinWebUrl` (`personal_links = False`; docs/VIDEO.md
and the portal say so). Anyone who gets hold of the link reaches the lobby; the lobby settings
below make people from outside the organiser's organisation wait there until admitted.

The app needs the application permission OnlineMeetings.ReadWrite.All and an application access
policy that allows it to act for TEAMS_USER_ID (Microsoft's documentation on "application access
policy" explains the one PowerShell command).
"""
from __future__ import annotations

import logging
from urllib.parse import quote

import requests

from ..models import Registration, Seminar
from .base import Attendance, AttendeeLink, Meeting, PlatformError, Problem, platform_meeting_id
from .http import HttpProvider, parse_retry_after, scrub
from .zoom import parse_time, zulu

log = logging.getLogger("seminar.video.teams")

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Outsiders wait in the lobby; people of the organiser's organisation may present.
MEETING_SETTINGS = {
    "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
    "allowedPresenters": "organization",
}


class TeamsProvider(HttpProvider):
    name = "teams"
    label = "Microsoft Graph"
    personal_links = False
    batch_size = 500  # nothing is called per attendee

    def __init__(self, config):
        super().__init__(config)
        self.api = config["GRAPH_API_BASE"].rstrip("/")
        self.user = quote(config.get("TEAMS_USER_ID") or "", safe="@")

    def fetch_token(self) -> tuple[str, int]:
        tenant = self.config.get("TEAMS_TENANT_ID")
        client_id, secret = self.config.get("TEAMS_CLIENT_ID"), self.config.get("TEAMS_CLIENT_SECRET")
        if not (tenant and client_id and secret and self.user):
            raise PlatformError("Teams is not configured: set TEAMS_TENANT_ID, TEAMS_CLIENT_ID, "
                                "TEAMS_CLIENT_SECRET and TEAMS_USER_ID", retry_after=600)
        url = (self.config.get("GRAPH_TOKEN_URL")
               or f"https://login.microsoftonline.com/{quote(tenant)}/oauth2/v2.0/token")
        response = self._post_token(url, data={
            "client_id": client_id, "client_secret": secret,
            "grant_type": "client_credentials", "scope": GRAPH_SCOPE})
        return self._token_answer(response)

    def _collection(self) -> str:
        return f"{self.api}/users/{self.user}/onlineMeetings"

    def _url(self, seminar: Seminar) -> str:
        return f"{self._collection()}/{quote(platform_meeting_id(seminar), safe='')}"

    @staticmethod
    def _details(seminar: Seminar) -> dict:
        return {"subject": seminar.title, "startDateTime": zulu(seminar.start_at),
                "endDateTime": zulu(seminar.end_at)}

    def create_meeting(self, seminar: Seminar) -> Meeting:
        answer = self.request("POST", self._collection(), json={**self._details(seminar), **MEETING_SETTINGS})
        if not answer.get("id") or not answer.get("joinWebUrl"):
            raise PlatformError("Graph's answer to creating the meeting had no id or joinWebUrl")
        log.info("teams: online meeting created for seminar %s", seminar.id)
        return Meeting(meeting_id=answer["id"], join_url=answer["joinWebUrl"], host_url=answer["joinWebUrl"])

    def update_meeting(self, seminar: Seminar) -> None:
        self.request("PATCH", self._url(seminar), json=self._details(seminar))

    def meeting_matches(self, seminar: Seminar) -> bool:
        found = self.request("GET", self._url(seminar)) or {}
        return (found.get("subject") == seminar.title
                and parse_time(found.get("startDateTime")) == seminar.start_at
                and parse_time(found.get("endDateTime")) == seminar.end_at)

    def delete_meeting(self, seminar: Seminar) -> None:
        self.request("DELETE", self._url(seminar))

    def add_attendees(self, seminar: Seminar, registrations: list[Registration]) -> dict[int, AttendeeLink]:
        # Graph has no personal links: everyone gets the meeting's shared link.
        if not seminar.meeting_join_url:
            raise PlatformError("the Teams meeting has no join link yet")
        return {reg.id: AttendeeLink(join_url=seminar.meeting_join_url) for reg in registrations}

    def remove_attendee(self, seminar: Seminar, registration: Registration) -> None:
        return None  # nothing is stored per attendee at Teams

    def attendance(self, seminar: Seminar) -> list[Attendance]:
        """Every join/leave interval in the meeting's attendance reports (one report per time the
        meeting was started). Needs OnlineMeetingArtifact.Read.All for the app."""
        rows = []
        listed = self.request("GET", f"{self._url(seminar)}/attendanceReports") or {}
        for report in listed.get("value") or []:
            url = f"{self._url(seminar)}/attendanceReports/{quote(str(report.get('id', '')), safe='')}/attendanceRecords"
            for _page in range(1000):  # Graph pages with @odata.nextLink; a bound, never a loop forever
                answer = self.request("GET", url) or {}
                for record in answer.get("value") or []:
                    identity = record.get("identity") if isinstance(record.get("identity"), dict) else {}
                    who = str(identity.get("id") or record.get("id") or "")[:100] or None
                    for span in record.get("attendanceIntervals") or []:
                        rows.append(Attendance(
                            participant_id=f"teams:{who}" if who else None, registrant_id=None,
                            joined_at=parse_time(span.get("joinDateTime")),
                            left_at=parse_time(span.get("leaveDateTime")),
                            email=record.get("emailAddress") or None,
                            name=identity.get("displayName") or None, source="teams"))
                url = answer.get("@odata.nextLink")
                if not url:
                    break
        return rows

    def error_for(self, response: requests.Response, body: dict | None) -> PlatformError:
        status = response.status_code
        error = (body or {}).get("error")
        error = error if isinstance(error, dict) else {}
        code, message = error.get("code"), scrub(error.get("message"))
        text = f"Graph {status}" + (f" ({code})" if code else "") + (f": {message}" if message else "")
        if status == 429 or (status == 503 and response.headers.get("Retry-After")):
            retry_after = parse_retry_after(response.headers.get("Retry-After")) or 1.0
            return PlatformError(f"{text}; again in {retry_after:.0f} s", retry_after=retry_after,
                                 problem=Problem.RATE_LIMITED)
        if status == 404:
            return PlatformError(text, problem=Problem.GONE)
        if status >= 500:
            return PlatformError(text)
        if status == 401:
            return PlatformError("Graph refused a fresh access token (401): check the app's "
                                 "permissions", retry_after=600)
        return PlatformError(text, problem=Problem.REFUSED)
