"""Storing what a platform tells about joins and leaves, matched to our registrations.

A participant is matched by the platform's registrant id first, then by e-mail address against
the seminar's confirmed registrations; one that matches neither is kept apart (as a guest, listed
for organisers) and never guessed.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..database import write_transaction
from ..extensions import db
from ..models import AttendanceEvent, Registration, RegistrationStatus

MATCHED = (RegistrationStatus.CONFIRMED,)
log = logging.getLogger("seminar.attendance")


def normalize(email: str | None) -> str:
    return (email or "").strip().lower()


class Matcher:
    """Looks registrations of one seminar up by registrant id and by address (read once)."""

    def __init__(self, seminar_id: int):
        self.seminar_id = seminar_id
        rows = db.session.execute(select(
            Registration.id, Registration.platform_registrant_id, Registration.email_normalized,
            Registration.status).where(Registration.seminar_id == seminar_id)).all()
        self.by_registrant = {rid: reg_id for reg_id, rid, _, _ in rows if rid}
        self.by_email = {email: reg_id for reg_id, _, email, status in rows if status in MATCHED}

    def match(self, registrant_id: str | None = None, email: str | None = None) -> int | None:
        if registrant_id and str(registrant_id) in self.by_registrant:
            return self.by_registrant[str(registrant_id)]
        return self.by_email.get(normalize(email)) if email else None


def match_one(seminar_id: int, registrant_id: str | None, email: str | None) -> int | None:
    """`Matcher.match` for one participant (a webhook): at most two indexed look-ups instead of
    reading the seminar's whole list."""
    if registrant_id:
        found = db.session.scalar(select(Registration.id).where(
            Registration.seminar_id == seminar_id, Registration.platform_registrant_id == str(registrant_id)))
        if found is not None:
            return found
    if email:
        return db.session.scalar(select(Registration.id).where(
            Registration.seminar_id == seminar_id, Registration.email_normalized == normalize(email),
            Registration.status.in_(MATCHED)))
    return None


def record_attendance(seminar_id: int, registration_id: int | None, event: str, at: datetime,
                      participant_id: str | None, source: str, guest: str | None = None) -> bool:
    """Store one join or leave once, however often the platform tells it (call in a transaction).
    `guest`: what the platform called a participant we could not match (shown to organisers)."""
    at = at.replace(microsecond=0)
    same = db.session.scalars(select(AttendanceEvent).where(
        AttendanceEvent.seminar_id == seminar_id, AttendanceEvent.event == event,
        AttendanceEvent.at == at)).all()
    for known in same:
        # The same participant told again. Another source telling the same moment is stored too:
        # merging counts it once, and each source must keep its joins and leaves paired.
        if (participant_id and known.participant_id == participant_id) or (
                not participant_id and registration_id and known.registration_id == registration_id
                and known.source == source):
            if registration_id and known.registration_id is None:
                known.registration_id, known.guest = registration_id, None  # matched after all
            return False
    db.session.add(AttendanceEvent(seminar_id=seminar_id, registration_id=registration_id,
                                   event=event, at=at, participant_id=participant_id, source=source,
                                   guest=None if registration_id else (guest or "")[:254] or None))
    return True


JOIN_WINDOW_BEFORE = timedelta(minutes=30)


def note_join_link_use(registration: Registration, now: datetime) -> bool:
    """Jitsi has no attendance API on a public server: the first use of a person's join link
    around the seminar's time counts as "joined" then (organisers confirm attendance in the
    portal). Uses outside that window (a mail scanner opening the link when the mail arrives)
    are not counted. Returns whether a join was recorded.

    The one GET with a side effect (docs/SECURITY.md): it records, never changes what a person
    has. Every later click only reads, so a room full of people clicking their links does not
    queue for the write lock; and a write that fails is logged and dropped, because the person
    must get to the seminar whatever happens here."""
    seminar = registration.seminar
    if not (seminar.start_at - JOIN_WINDOW_BEFORE <= now <= seminar.end_at):
        return False
    if _join_link_used(registration.id):
        return False
    try:
        with write_transaction():
            if _join_link_used(registration.id):  # clicked twice at once
                return False
            return record_attendance(seminar.id, registration.id, "joined", now,
                                     f"jitsi:{registration.id}", "jitsi")
    except SQLAlchemyError as exc:
        log.warning("seminar %s: a join-link use was not recorded (%s)", seminar.id, type(exc).__name__)
        return False


def _join_link_used(registration_id: int) -> bool:
    return db.session.scalar(select(AttendanceEvent.id).where(
        AttendanceEvent.registration_id == registration_id, AttendanceEvent.source == "jitsi").limit(1)) is not None
