"""Zoom: Server-to-Server OAuth, a registration-required meeting (or webinar) per seminar and a
personal join URL per attendee.

Our service decides who gets in; Zoom only carries it out. The meeting settings we send, from
Zoom's OpenAPI document, and why:

- `approval_type: 1` (manual approval), and every add we make carries `auto_approve: true`.
  Our attendees are approved at once and get their personal `join_url`. Anyone who finds Zoom's
  own registration page and registers there lands in "pending", and nobody approves them: a
  pending registrant has no working join link. (With `approval_type: 0` Zoom would approve
  them automatically, so that page would let outsiders in.) The nightly reconcile denies such
  pending outsiders, so they do not linger in the host's list.
- `registrants_email_notification: false` and `registrants_confirmation_email: false`: Zoom
  mails nobody; attendees get our mails (Dutch, with the calendar invite and our join link).
- `close_registration: true`: Zoom's registration closes after the meeting date.
- `show_share_button: false`: no social-media share buttons on the registration page.
- `allow_multiple_devices: false`: one personal link cannot be used by several people at once.
- `meeting_authentication: false`: requiring a Zoom account would lock out attendees without
  one; the personal registrant link is the key instead.
- `registrants_restrict_number` (webinars only) is left unset: Zoom counts pending outsiders
  towards it, so it could turn our own attendees away; our capacity is enforced by our service.

Registrants are added with our data only (first name, last name, e-mail). One attendee is one
`POST …/registrants`; several at once go as `batch_registrants` (up to 30). Cancelling uses
`PUT …/registrants/status` with action `cancel`. Webinars use the batch call for single adds too:
their single-add call has no `auto_approve`.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import quote

import requests
from sqlalchemy import select

from ..extensions import db
from ..models import Registration, Seminar
from .base import Attendance, AttendeeLink, Meeting, PlatformError, Problem, Registrant, platform_meeting_id
from .http import ADDRESS, HttpProvider, parse_retry_after, scrub, until_next_utc_day

log = logging.getLogger("seminar.video.zoom")

COMMON_SETTINGS = {
    "approval_type": 1,
    "registration_type": 1,
    "registrants_email_notification": False,
    "close_registration": True,
    "show_share_button": False,
    "allow_multiple_devices": False,
    "meeting_authentication": False,
}
MEETING_SETTINGS = {**COMMON_SETTINGS, "registrants_confirmation_email": False}
WEBINAR_SETTINGS = {
    **COMMON_SETTINGS,
    # We send the reminders and follow-ups ourselves.
    "attendees_and_panelists_reminder_email_notification": {"enable": False},
    "follow_up_absentees_email_notification": {"enable": False},
    "follow_up_attendees_email_notification": {"enable": False},
}
PAGE_SIZE = 300


def zulu(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def names(registration: Registration) -> dict:
    """First and last name as Zoom wants them ("Anouk de Vries" -> "Anouk", "de Vries")."""
    parts = registration.name.strip().split(None, 1)
    person = {"first_name": (parts[0] if parts else "-")[:64]}
    if len(parts) > 1:
        person["last_name"] = parts[1][:64]
    return person


class ZoomProvider(HttpProvider):
    name = "zoom"
    label = "Zoom"
    batch_size = 30  # batch_registrants takes up to 30

    def __init__(self, config):
        super().__init__(config)
        self.webinar = (config.get("ZOOM_MEETING_KIND") or "meeting").lower() == "webinar"
        self.kind = "webinars" if self.webinar else "meetings"
        self.api = config["ZOOM_API_BASE"].rstrip("/")
        self.user = quote(config.get("ZOOM_USER_ID") or "me", safe="@")
        self.settings = WEBINAR_SETTINGS if self.webinar else MEETING_SETTINGS

    # ---------------------------------------------------------------- token
    def fetch_token(self) -> tuple[str, int]:
        account = self.config.get("ZOOM_ACCOUNT_ID")
        client_id, secret = self.config.get("ZOOM_CLIENT_ID"), self.config.get("ZOOM_CLIENT_SECRET")
        if not (account and client_id and secret):
            raise PlatformError("Zoom is not configured: set ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and "
                                "ZOOM_CLIENT_SECRET", retry_after=600)
        response = self._post_token(self.config["ZOOM_OAUTH_URL"], auth=(client_id, secret),
                                    params={"grant_type": "account_credentials", "account_id": account})
        return self._token_answer(response)

    # ---------------------------------------------------------------- meetings
    def _url(self, seminar: Seminar, suffix: str = "") -> str:
        return f"{self.api}/{self.kind}/{platform_meeting_id(seminar)}{suffix}"

    def _details(self, seminar: Seminar) -> dict:
        return {
            "topic": seminar.title[:200],
            "start_time": zulu(seminar.start_at),
            "duration": seminar.duration_minutes,
            "timezone": self.config.get("TIMEZONE") or "UTC",
            "agenda": (seminar.description or "")[:2000],
            "settings": self.settings,
        }

    def create_meeting(self, seminar: Seminar) -> Meeting:
        body = {**self._details(seminar), "type": 5 if self.webinar else 2}
        answer = self.request("POST", f"{self.api}/users/{self.user}/{self.kind}", json=body)
        if not answer.get("id") or not answer.get("join_url"):
            raise PlatformError("Zoom's answer to creating the meeting had no id or join_url")
        log.info("zoom: %s %s created for seminar %s", self.kind[:-1], answer["id"], seminar.id)
        return Meeting(meeting_id=str(answer["id"]), join_url=answer["join_url"],
                       host_url=answer.get("start_url"))

    def find_meeting(self, seminar: Seminar) -> Meeting | None:
        """After a create whose answer was lost, adopt the meeting it made instead of a second."""
        params = {"page_size": PAGE_SIZE, **({} if self.webinar else {"type": "upcoming"})}
        answer = self.request("GET", f"{self.api}/users/{self.user}/{self.kind}", params=params)
        taken = set(db.session.scalars(select(Seminar.meeting_id).where(Seminar.meeting_id.is_not(None))))
        for item in (answer or {}).get(self.kind) or []:
            if (str(item.get("id")) not in taken and item.get("topic") == seminar.title[:200]
                    and parse_time(item.get("start_time")) == seminar.start_at
                    and item.get("duration") == seminar.duration_minutes and item.get("join_url")):
                log.info("zoom: adopting %s %s made by an earlier attempt", self.kind[:-1], item["id"])
                return Meeting(meeting_id=str(item["id"]), join_url=item["join_url"])
        return None

    def update_meeting(self, seminar: Seminar) -> None:
        # The settings go along each time, so a meeting changed by hand at Zoom is put right.
        self.request("PATCH", self._url(seminar), json=self._details(seminar))

    def meeting_matches(self, seminar: Seminar) -> bool:
        found = self.request("GET", self._url(seminar)) or {}
        settings = found.get("settings") or {}
        return (found.get("topic") == seminar.title[:200]
                and parse_time(found.get("start_time")) == seminar.start_at
                and found.get("duration") == seminar.duration_minutes
                and settings.get("approval_type") == self.settings["approval_type"])

    def delete_meeting(self, seminar: Seminar) -> None:
        try:
            approved = [r.registrant_id for r in self.registrants(seminar, ("approved",))]
        except PlatformError as exc:
            if not isinstance(exc, RegistrationOff):
                raise
            approved = []  # registration was switched off at Zoom: nobody to cancel
        self.cancel_registrants(seminar, approved)
        # Nobody is mailed by Zoom: attendees get our calendar cancellation.
        params = ({"cancel_webinar_reminder": "false"} if self.webinar
                  else {"schedule_for_reminder": "false", "cancel_meeting_reminder": "false"})
        self.request("DELETE", self._url(seminar), params=params)
        log.info("zoom: %s of seminar %s deleted (%s registrants cancelled)", self.kind[:-1],
                 seminar.id, len(approved))

    def host_link(self, seminar: Seminar) -> str | None:
        # The start_url stored when the meeting was made expires after about two hours: ask Zoom
        # for the current one each time a host starts the meeting.
        answer = self.request("GET", self._url(seminar)) or {}
        return answer.get("start_url") or seminar.meeting_host_url

    # ---------------------------------------------------------------- attendees
    def add_attendees(self, seminar: Seminar, registrations: list[Registration]) -> dict[int, AttendeeLink]:
        if not registrations:
            return {}
        for attempt in (1, 2):
            try:
                if len(registrations) == 1 and not self.webinar:
                    return self._add_one(seminar, registrations[0])
                return self._add_batch(seminar, registrations)
            except PlatformError as exc:
                if isinstance(exc, RegistrationOff) and attempt == 1:
                    # Someone switched registration off at Zoom: switch it back on, try once more.
                    log.warning("zoom: registration was off for seminar %s; restoring settings", seminar.id)
                    self.request("PATCH", self._url(seminar), json={"settings": self.settings})
                    continue
                if isinstance(exc, DailyLimit) and exc.address:
                    exc.registrations = frozenset(r.id for r in registrations
                                                  if r.email.strip().lower() == exc.address) or None
                raise
        raise AssertionError("unreachable")

    def _add_one(self, seminar: Seminar, registration: Registration) -> dict[int, AttendeeLink]:
        body = {"email": registration.email.strip(), **names(registration), "auto_approve": True}
        answer = self.request("POST", self._url(seminar, "/registrants"), json=body)
        registrant_id, join_url = answer.get("registrant_id"), answer.get("join_url")
        if registrant_id and not join_url:
            # Zoom leaves join_url out for manually approved meetings; the registrant has it.
            found = self.request("GET", self._url(seminar, f"/registrants/{quote(registrant_id)}"))
            join_url = (found or {}).get("join_url")
        if not join_url:
            return {}
        return {registration.id: AttendeeLink(join_url=join_url, registrant_id=registrant_id)}

    def _add_batch(self, seminar: Seminar, registrations: list[Registration]) -> dict[int, AttendeeLink]:
        body = {"auto_approve": True, "registrants": [
            {"email": reg.email.strip(), **names(reg)} for reg in registrations]}
        if not self.webinar:
            body["registrants_confirmation_email"] = False
        answer = self.request("POST", self._url(seminar, "/batch_registrants"), json=body)
        by_address = {reg.email.strip().lower(): reg.id for reg in registrations}
        links = {}
        for item in answer.get("registrants") or []:
            reg_id = by_address.get(str(item.get("email", "")).lower())
            if reg_id is not None and item.get("join_url"):
                links[reg_id] = AttendeeLink(join_url=item["join_url"],
                                             registrant_id=item.get("registrant_id"))
        return links

    def remove_attendee(self, seminar: Seminar, registration: Registration) -> None:
        who = ({"id": registration.platform_registrant_id} if registration.platform_registrant_id
               else {"email": registration.email.strip()})
        self._set_status(seminar, "cancel", [who])

    def registrants(self, seminar: Seminar, statuses=("approved", "pending")) -> list[Registrant]:
        found = []
        for status in statuses:
            params = {"status": status, "page_size": PAGE_SIZE}
            while True:
                answer = self.request("GET", self._url(seminar, "/registrants"), params=params) or {}
                for item in answer.get("registrants") or []:
                    found.append(Registrant(registrant_id=str(item.get("id")),
                                            email=str(item.get("email", "")).lower(),
                                            status=item.get("status") or status))
                token = answer.get("next_page_token")
                if not token:
                    break
                params = {"status": status, "page_size": PAGE_SIZE, "next_page_token": token}
        return found

    def cancel_registrants(self, seminar: Seminar, registrant_ids: list[str], *, deny: bool = False) -> None:
        for start in range(0, len(registrant_ids), 30):
            chunk = registrant_ids[start:start + 30]
            self._set_status(seminar, "deny" if deny else "cancel", [{"id": rid} for rid in chunk])

    def forget_registrant(self, seminar: Seminar, registrant_id: str) -> None:
        self.request("DELETE", self._url(seminar, f"/registrants/{quote(registrant_id, safe='')}"))

    def _set_status(self, seminar: Seminar, action: str, who: list[dict]) -> None:
        self.request("PUT", self._url(seminar, "/registrants/status"),
                     json={"action": action, "registrants": who})

    def attendance(self, seminar: Seminar) -> list[Attendance]:
        rows, params = [], {"page_size": PAGE_SIZE, "include_fields": "registrant_id"}
        url = f"{self.api}/report/{self.kind}/{platform_meeting_id(seminar)}/participants"
        while True:
            answer = self.request("GET", url, params=params) or {}
            for item in answer.get("participants") or []:
                rows.append(Attendance(
                    participant_id=str(item.get("id") or item.get("user_id") or "") or None,
                    registrant_id=item.get("registrant_id") or None,
                    joined_at=parse_time(item.get("join_time")),
                    left_at=parse_time(item.get("leave_time")),
                    email=item.get("user_email") or None, name=item.get("name") or None))
            token = answer.get("next_page_token")
            if not token:
                return rows
            params = {**params, "next_page_token": token}

    # ---------------------------------------------------------------- errors
    def error_for(self, response: requests.Response, body: dict | None) -> PlatformError:
        status = response.status_code
        code = (body or {}).get("code")
        raw = str((body or {}).get("message") or "")
        lowered = raw.lower()
        text = f"Zoom {status}" + (f" (code {code})" if code else "") + f": {scrub(raw) or 'no message'}"
        if body is None:
            text = f"Zoom {status} with {('an empty body' if not response.content else 'no JSON')}"
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.headers.get("X-RateLimit-Type", "").lower() == "daily-limit" or "daily" in lowered:
                # Zoom allows 3 adds per address per day: try that person again tomorrow, not now.
                retry_after = retry_after or until_next_utc_day()
                match = ADDRESS.search(raw)
                return DailyLimit(f"Zoom's daily limit for one address reached; again in "
                                  f"{retry_after / 3600:.1f} h", retry_after=retry_after,
                                  address=match.group(0).strip(".\"'").lower() if match else None)
            return PlatformError(f"Zoom rate limit (429); again in {retry_after or 1:.0f} s",
                                 retry_after=retry_after or 1.0, problem=Problem.RATE_LIMITED)
        if code == 3001:
            return PlatformError(text, problem=Problem.GONE)
        if code == 3043:
            return PlatformError("the Zoom meeting has reached its maximum number of attendees "
                                 "(3043): raise its capacity at Zoom", retry_after=3600)
        if code == 3000 and (status == 404 or "not found" in lowered):
            return PlatformError(text, problem=Problem.GONE)
        if ("registration has not been enabled" in lowered or "registration not enabled" in lowered
                or "not set registration as required" in lowered):
            return RegistrationOff(text, problem=Problem.GONE if action_is_moot(response) else Problem.REFUSED)
        if status >= 500:
            return PlatformError(text)  # temporary: the worker backs off with jitter
        if status == 401:
            return PlatformError("Zoom refused a fresh access token (401): check the app's scopes",
                                 retry_after=600)
        return PlatformError(text, problem=Problem.REFUSED)


class DailyLimit(PlatformError):
    """Zoom's limit of adds per address per day: `address` waits until tomorrow, not the others."""

    def __init__(self, message: str, *, retry_after: float, address: str | None):
        super().__init__(message, retry_after=retry_after)
        self.address = address


class RegistrationOff(PlatformError):
    """Someone switched registration off for the meeting at Zoom (we switch it back on)."""


def action_is_moot(response: requests.Response) -> bool:
    """Cancelling someone at a meeting without registration: there is nobody to cancel."""
    return response.request is not None and response.request.method == "PUT"
