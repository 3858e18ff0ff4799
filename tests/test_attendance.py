"""Attendance in minutes per registration: Zoom webhooks and report merged, the minimum rule,
corrections, and `seminar attendance ID`."""
from __future__ import annotations

from datetime import timedelta

import pytest

from seminar.attendance.models import AttendanceCorrection
from seminar.attendance.service import CorrectionError, correct, merged_seconds, summary
from seminar.extensions import db
from seminar.models import Registration, Seminar, User

from .helpers import future, jobs, work
from .test_webhooks import deliver, participant
from .video_kit import app_config, zoom, zoom_stays_clean  # noqa: F401  (fixtures)
from .video_kit import confirm_many, fresh


@pytest.fixture
def held(app, zoom, make_seminar):
    """A 90-minute seminar two days from now with its Zoom meeting and three confirmed people."""
    start = future(days=2)
    seminar = make_seminar(start_at=start, duration_minutes=90)
    work()
    ids = confirm_many(seminar, 3)
    work()
    seminar = fresh(Seminar, seminar.id)
    return seminar, int(seminar.meeting_id), [fresh(Registration, i) for i in ids]


def minutes_of(seminar) -> dict[str, tuple[int, bool]]:
    db.session.rollback()
    return {row.registration.email: (row.minutes, row.attended) for row in summary(fresh(Seminar, seminar.id)).rows}


def rejoin_by_webhook(client, seminar, mid, reg, uuid="p-1"):
    s = seminar.start_at
    for name, at in (("joined", s), ("left", s + timedelta(minutes=30)),
                     ("joined", s + timedelta(minutes=32)), ("left", s + timedelta(minutes=90))):
        response = deliver(client, participant(mid, f"meeting.participant_{name}", at, reg, participant_uuid=uuid))
        assert response.status_code == 200


def rejoin_in_report(zoom, seminar, mid, reg):
    s = seminar.start_at
    zoom.add_participant(mid, reg.name, reg.email, s, s + timedelta(minutes=30), registrant_id=reg.platform_registrant_id)
    zoom.add_participant(mid, reg.name, reg.email, s + timedelta(minutes=32), s + timedelta(minutes=90),
                         registrant_id=reg.platform_registrant_id)


def test_merging_counts_overlaps_once():
    from datetime import datetime, timezone
    t = lambda m: datetime(2027, 1, 1, 10, 0, tzinfo=timezone.utc) + timedelta(minutes=m)  # noqa: E731
    assert merged_seconds([(t(0), t(30)), (t(32), t(90))]) == 88 * 60
    assert merged_seconds([(t(0), t(30)), (t(10), t(40)), (t(40), t(50))]) == 50 * 60
    assert merged_seconds([(t(5), t(5)), (t(9), t(3))]) == 0


def test_a_rejoin_by_webhooks_merges_to_the_right_minutes(client, held):
    seminar, mid, (anouk, bram, carla) = held
    rejoin_by_webhook(client, seminar, mid, anouk)
    # Bram's connection drops and he is back at once, from a second device for a while.
    s = seminar.start_at
    for name, at, uuid in (("joined", s, "b1"), ("joined", s + timedelta(minutes=20), "b2"),
                           ("left", s + timedelta(minutes=25), "b1"), ("left", s + timedelta(minutes=50), "b2")):
        deliver(client, participant(mid, f"meeting.participant_{name}", at, bram, participant_uuid=uuid))
    found = minutes_of(seminar)
    assert found[anouk.email] == (88, True)
    assert found[bram.email] == (50, False)  # 75 % of 90 minutes is 68
    assert found[carla.email] == (0, False)


def test_the_report_alone_gives_the_same_and_both_together_do_not_double_count(app, client, zoom, held):
    seminar, mid, (anouk, bram, carla) = held
    rejoin_in_report(zoom, seminar, mid, anouk)
    # Bram is in the report without his registrant id: matched by his address.
    zoom.add_participant(mid, bram.name, bram.email.upper(), seminar.start_at + timedelta(minutes=10),
                         seminar.start_at + timedelta(minutes=80))
    work(now=seminar.end_at + timedelta(hours=2))
    assert [job.state for job in jobs("video.attendance")] == ["done"]
    report_only = minutes_of(seminar)
    assert report_only[anouk.email] == (88, True) and report_only[bram.email] == (70, True)

    rejoin_by_webhook(client, seminar, mid, anouk)  # webhooks arriving late tell the same
    assert minutes_of(seminar) == report_only
    [row] = [r for r in summary(fresh(Seminar, seminar.id)).rows if r.registration.id == anouk.id]
    assert row.source == "zoom"


def test_a_participant_unknown_to_us_is_listed_not_matched(app, client, zoom, held):
    seminar, mid, regs = held
    zoom.add_participant(mid, "Gast Zonder Aanmelding", "gast@elders.example", seminar.start_at,
                         seminar.start_at + timedelta(minutes=85))
    deliver(client, participant(mid, "meeting.participant_joined", seminar.start_at, None,
                                participant_uuid="g-2", user_name="Onbekende Beller", email="beller@elders.example"))
    work(now=seminar.end_at + timedelta(hours=2))
    result = summary(fresh(Seminar, seminar.id))
    assert {g.label for g in result.guests} == {"Gast Zonder Aanmelding", "Onbekende Beller"}
    assert all(row.minutes == 0 for row in result.rows)
    assert result.attended == 0 and result.absent == 3


def test_stay_is_capped_at_the_seminars_length_and_an_open_join_ends_with_it(client, held):
    seminar, mid, (anouk, bram, _) = held
    s = seminar.start_at
    deliver(client, participant(mid, "meeting.participant_joined", s - timedelta(minutes=20), anouk))
    deliver(client, participant(mid, "meeting.participant_left", s + timedelta(minutes=130), anouk))
    deliver(client, participant(mid, "meeting.participant_joined", s + timedelta(minutes=15), bram,
                                participant_uuid="b"))  # the leave never arrived
    found = minutes_of(seminar)
    assert found[anouk.email] == (90, True)
    assert found[bram.email] == (75, True)


def test_the_minimum_is_per_seminar(client, held):
    seminar, mid, (anouk, *_) = held
    s = seminar.start_at
    deliver(client, participant(mid, "meeting.participant_joined", s, anouk))
    deliver(client, participant(mid, "meeting.participant_left", s + timedelta(minutes=50), anouk))
    assert minutes_of(seminar)[anouk.email] == (50, False)
    fresh(Seminar, seminar.id).min_attendance_percent = 50
    db.session.commit()
    assert minutes_of(seminar)[anouk.email] == (50, True)


def test_a_correction_wins_and_keeps_who_why_and_when(app, held):
    seminar, mid, (anouk, bram, _) = held
    organiser = User(email="org@bmk.example", role="organiser")
    db.session.add(organiser)
    db.session.commit()
    with pytest.raises(CorrectionError):
        correct(anouk.id, attended=True, reason="  ", user=organiser)
    correct(anouk.id, attended=True, reason="Was via de telefoon ingebeld", user=organiser, minutes=90)
    found = minutes_of(seminar)
    assert found[anouk.email] == (90, True)
    [c] = db.session.scalars(db.select(AttendanceCorrection)).all()
    assert (c.by_label, c.reason, c.at is not None) == ("org@bmk.example", "Was via de telefoon ingebeld", True)
    [row] = [r for r in summary(fresh(Seminar, seminar.id)).rows if r.registration.id == anouk.id]
    assert row.source == "portal"


def test_the_command_prints_one_line_per_confirmed_attendee(runner, client, held):
    seminar, mid, (anouk, bram, carla) = held
    rejoin_by_webhook(client, seminar, mid, anouk)
    result = runner.invoke(args=["seminar", "attendance", str(seminar.id)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{anouk.email}  88  attended  zoom",
        f"{bram.email}  0  absent  -",
        f"{carla.email}  0  absent  -",
    ]
    assert runner.invoke(args=["seminar", "attendance", "999"]).exit_code != 0


def test_an_open_webhook_join_gives_way_to_closed_sessions_from_the_report(client, zoom, held):
    seminar, mid, (anouk, bram, _) = held
    s = seminar.start_at
    # Anouk's leave webhook never arrived; the report says she stayed 10 minutes.
    deliver(client, participant(mid, "meeting.participant_joined", s, anouk))
    zoom.add_participant(mid, anouk.name, anouk.email, s, s + timedelta(minutes=10),
                         registrant_id=anouk.platform_registrant_id)
    # Bram's neither: nothing else is known, so his open join lasts to the end.
    deliver(client, participant(mid, "meeting.participant_joined", s + timedelta(minutes=15), bram,
                                participant_uuid="b"))
    work(now=seminar.end_at + timedelta(hours=2))
    found = minutes_of(seminar)
    assert found[anouk.email] == (10, False)
    assert found[bram.email] == (75, True)


def test_a_join_stored_twice_counts_once(app, held):
    """Zoom retries a webhook; two requests at once can both store it (check, then insert)."""
    from seminar.models import AttendanceEvent
    seminar, mid, (anouk, *_) = held
    s = seminar.start_at
    for event, at in (("joined", s), ("joined", s), ("left", s + timedelta(minutes=20))):
        db.session.add(AttendanceEvent(seminar_id=seminar.id, registration_id=anouk.id, event=event,
                                       at=at, participant_id="p-1", source="webhook"))
    db.session.commit()
    assert minutes_of(seminar)[anouk.email] == (20, False)
