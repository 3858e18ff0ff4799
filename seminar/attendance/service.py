"""Attendance per registration, in minutes, from everything the platforms and imports told.

Every source becomes join/leave moments (AttendanceEvent): Zoom's webhooks and its report, Teams'
attendance records, a participant list an organiser uploaded. Per registration the intervals are
merged, so a dropped connection and a rejoin, or the same session told by a webhook and by the
report, count once; the total is capped at the seminar's length. A webhook join with no leave lasts
until the seminar's end, unless another source tells closed sessions for the person. Jitsi tells nothing: the first use of a join link is shown as "joined", and an
organiser confirms attendance. An organiser's correction wins over all of it.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..database import write_transaction
from ..extensions import db
from ..models import AttendanceEvent, Registration, RegistrationStatus, Seminar, User
from ..timeutil import utcnow
from .models import AttendanceCorrection

# What each stored source is called where people read it.
SOURCE_LABELS = {"webhook": "zoom", "report": "zoom", "teams": "teams", "csv": "csv", "jitsi": "jitsi"}


@dataclass
class Row:
    registration: Registration
    minutes: int
    sources: list[str]
    attended: bool
    joined_at: datetime | None = None
    correction: AttendanceCorrection | None = None

    @property
    def source(self) -> str:
        return "+".join(self.sources) or "-"


@dataclass
class Guest:
    """A participant the platform told about who matched none of our registrations."""

    label: str
    minutes: int
    source: str


@dataclass
class Summary:
    seminar: Seminar
    rows: list[Row] = field(default_factory=list)
    guests: list[Guest] = field(default_factory=list)

    @property
    def attended(self) -> int:
        return sum(1 for row in self.rows if row.attended)

    @property
    def absent(self) -> int:
        return len(self.rows) - self.attended


def merged_seconds(intervals: list[tuple[datetime, datetime]]) -> int:
    """Total time covered by the intervals, overlaps counted once."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if current_end is None or start > current_end:
            if current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_end is not None:
        total += (current_end - current_start).total_seconds()
    return int(total)


def intervals(events: list[AttendanceEvent], until: datetime) -> list[tuple[datetime, datetime]]:
    """Join/leave moments paired per participant and source. Overlapping joins of one participant
    (two devices) stay open until the last leave; the same moment told twice (a platform's retry
    stored by two requests at once) counts once. A webhook join left open lasts `until` only when
    nothing else is known: when a report, Teams or a participant list gives closed sessions, the
    leave was just missed and the closed sessions say how long the person stayed."""
    groups: dict[tuple, set[tuple[datetime, str]]] = defaultdict(set)
    for ev in events:
        groups[(ev.source, ev.participant_id or f"reg:{ev.registration_id}")].add((ev.at, ev.event))
    closed, left_open = [], []
    for (source, _), moments in groups.items():
        # At the same moment a leave comes before a join: a rejoin is not an overlap.
        open_count, opened = 0, None
        for at, event in sorted(moments, key=lambda m: (m[0], m[1] == "joined")):
            if event == "joined":
                if open_count == 0:
                    opened = at
                open_count += 1
            elif open_count > 0:
                open_count -= 1
                if open_count == 0:
                    closed.append((source, opened, at))
        if open_count > 0 and opened < until:
            left_open.append((source, opened, until))
    told_elsewhere = {source for source, _, _ in closed if source != "webhook"}
    if told_elsewhere:
        left_open = [found for found in left_open if found[0] != "webhook"]
    return [(start, end) for _, start, end in closed + left_open]


def minutes_from(events: list[AttendanceEvent], seminar: Seminar) -> int:
    """Minutes from the start on (waiting in the room before it is not attending), capped at the
    seminar's length (a seminar that ran late does not give more than it lasts)."""
    start = seminar.start_at
    clipped = [(max(a, start), b) for a, b in intervals(events, seminar.end_at)]
    return min(seminar.duration_minutes, merged_seconds(clipped) // 60)


def latest_corrections(seminar_id: int) -> dict[int, AttendanceCorrection]:
    latest: dict[int, AttendanceCorrection] = {}
    for correction in db.session.scalars(select(AttendanceCorrection).where(
            AttendanceCorrection.seminar_id == seminar_id).order_by(AttendanceCorrection.id)):
        latest[correction.registration_id] = correction
    return latest


def summary(seminar: Seminar, only: int | None = None) -> Summary:
    """Everyone confirmed for the seminar, with minutes, sources and attended/absent; `only`: just
    that registration's row (a row depends on its own events and correction alone), no guests."""
    events = select(AttendanceEvent).where(AttendanceEvent.seminar_id == seminar.id)
    registrations = select(Registration).where(
        Registration.seminar_id == seminar.id, Registration.status == RegistrationStatus.CONFIRMED)
    if only is not None:
        events = events.where(AttendanceEvent.registration_id == only)
        registrations = registrations.where(Registration.id == only)
    events = db.session.scalars(events.order_by(AttendanceEvent.at, AttendanceEvent.id)).all()
    by_reg: dict[int | None, list[AttendanceEvent]] = defaultdict(list)
    for ev in events:
        by_reg[ev.registration_id].append(ev)
    corrections = latest_corrections(seminar.id)
    result = Summary(seminar)
    for reg in db.session.scalars(registrations.order_by(Registration.id)):
        own = by_reg.get(reg.id, [])
        timed = [ev for ev in own if ev.source != "jitsi"]
        minutes = minutes_from(timed, seminar)
        sources = sorted({SOURCE_LABELS.get(ev.source, ev.source) for ev in own})
        joined = min((ev.at for ev in own if ev.event == "joined"), default=None)
        correction = corrections.get(reg.id)
        attended = minutes >= seminar.minimum_minutes
        if correction is not None:
            attended = correction.attended
            if correction.minutes is not None:
                minutes = correction.minutes
            if attended:
                # Confirmed present (by phone, on Jitsi): at least the minimum, so that whoever
                # is counted as attended can have a certificate (DESIGN.md's invariant).
                minutes = max(minutes, seminar.minimum_minutes)
            sources.append("portal")
        result.rows.append(Row(reg, minutes, sources, attended, joined, correction))
    guests: dict[str, list[AttendanceEvent]] = defaultdict(list)
    for ev in by_reg.get(None, []):
        guests[ev.guest or ev.participant_id or "?"].append(ev)
    for label, own in sorted(guests.items()):
        result.guests.append(Guest(label, minutes_from(own, seminar),
                                   "+".join(sorted({SOURCE_LABELS.get(ev.source, ev.source) for ev in own}))))
    return result


class CorrectionError(ValueError):
    """Why a correction was refused, in words for the organiser (translated when shown)."""


def correct(registration_id: int, *, attended: bool, reason: str, user: User | None,
            minutes: int | None = None, now: datetime | None = None) -> AttendanceCorrection:
    """An organiser decides one person's attendance; why, who and when are kept with it."""
    with write_transaction():
        return record_correction(registration_id, attended=attended, reason=reason, user=user,
                                 minutes=minutes, now=now)


def record_correction(registration_id: int, *, attended: bool, reason: str, user: User | None,
                      minutes: int | None = None, now: datetime | None = None) -> AttendanceCorrection:
    """`correct` in the caller's write transaction."""
    reason = (reason or "").strip()
    if not reason:
        raise CorrectionError(_l("Please give a reason."))
    if len(reason) > 500:
        raise CorrectionError(_l("The reason is longer than 500 characters."))
    reg = db.session.get(Registration, registration_id)
    if reg is None or reg.status != RegistrationStatus.CONFIRMED:
        raise CorrectionError(_l("Only the attendance of someone with a seat can be corrected."))
    if minutes is not None and not 0 <= minutes <= reg.seminar.duration_minutes:
        raise CorrectionError(_l("The minutes must be between 0 and %(most)d, the length of the seminar.",
                                 most=reg.seminar.duration_minutes))
    if attended and minutes is not None:
        # Present by the organiser's word counts at least the minimum (see `summary`).
        minutes = max(minutes, reg.seminar.minimum_minutes)
    correction = AttendanceCorrection(
        seminar_id=reg.seminar_id, registration_id=reg.id, attended=attended, minutes=minutes,
        reason=reason, by_user_id=user.id if user else None,
        by_label=(user.email if user else "command line"), at=now or utcnow())
    db.session.add(correction)
    return correction


def summary_row(seminar: Seminar, registration_id: int) -> Row | None:
    return next(iter(summary(seminar, only=registration_id).rows), None)
