"""Jitsi Meet: the zero-configuration default. No account, no API calls.

Every seminar gets an unguessable room name. With JITSI_APP_ID and JITSI_APP_SECRET (a
self-hosted Jitsi with token authentication) each attendee's link carries a signed JWT, so only
registered people get in.
"""
from __future__ import annotations

from datetime import timedelta

import jwt

from ..models import Registration, Seminar
from .base import AttendeeLink, Meeting, VideoProvider


class JitsiProvider(VideoProvider):
    name = "jitsi"
    batch_size = 100

    @property
    def signed(self) -> bool:
        return bool(self.config.get("JITSI_APP_ID") and self.config.get("JITSI_APP_SECRET"))

    @property
    def links_follow_schedule(self) -> bool:
        # A JWT is valid around the seminar's time: after a reschedule every link is signed anew.
        return self.signed

    @property
    def base_url(self) -> str:
        return self.config["JITSI_BASE_URL"]

    def room_url(self, seminar: Seminar) -> str:
        return f"{self.base_url}/{seminar.room_name}"

    def create_meeting(self, seminar: Seminar) -> Meeting:
        return Meeting(meeting_id=seminar.room_name, join_url=self.room_url(seminar),
                       host_url=self.room_url(seminar))

    def update_meeting(self, seminar: Seminar) -> None:
        return None  # a Jitsi room has no schedule

    def delete_meeting(self, seminar: Seminar) -> None:
        return None

    def add_attendees(self, seminar: Seminar, registrations: list[Registration]) -> dict[int, AttendeeLink]:
        return {reg.id: AttendeeLink(join_url=self.join_url(seminar, reg)) for reg in registrations}

    def remove_attendee(self, seminar: Seminar, registration: Registration) -> None:
        return None  # JWTs expire with the seminar; nothing is stored at the platform

    def join_url(self, seminar: Seminar, registration: Registration) -> str:
        url = self.room_url(seminar)
        if not self.signed:
            return url
        app_id, secret = self.config["JITSI_APP_ID"], self.config["JITSI_APP_SECRET"]
        claims = {
            "iss": app_id,
            "aud": "jitsi",
            "sub": self.config["JITSI_BASE_URL"].split("://", 1)[-1].split("/", 1)[0],
            "room": seminar.room_name,
            "nbf": int((seminar.start_at - timedelta(hours=1)).timestamp()),
            "exp": int((seminar.end_at + timedelta(hours=2)).timestamp()),
            "context": {"user": {"name": registration.name, "email": registration.email}},
        }
        return f"{url}?jwt={jwt.encode(claims, secret, algorithm='HS256')}"
