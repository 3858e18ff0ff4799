"""Bulk mail against the relay's quota: fan-outs that start early enough, the portal saying when
a fan-out will be done and how the relay is doing, one mail to organisers when mail is held."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from seminar.extensions import db
from seminar.jobs import kinds
from seminar.models import Job, JobState
from seminar.notify import mail_schedule, relay_notice
from seminar.notify.relay.answers import classify
from seminar.timeutil import utcnow
from tests.standins.relay import QUOTA_EXCEEDED, THROTTLED

from .portal_helpers import Staff, make_user

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def app_config():
    return {"MAIL_RATE_LIMIT": "30/minute;10000/day"}


def _queue(seminar, kind: str, count: int, due: datetime) -> None:
    lane = kinds.get(kind).lane
    db.session.execute(insert(Job), [dict(kind=kind, lane=lane, seminar_id=seminar.id, due_at=due, payload={},
                                          state=JobState.PENDING, attempts=0) for _ in range(count)])
    db.session.commit()


def _due_times(kind: str) -> list[datetime]:
    db.session.expire_all()
    return [job.due_at for job in db.session.scalars(select(Job).where(Job.kind == kind))]


def test_600_reminders_due_at_nine_at_30_a_minute_start_at_twenty_to(app, make_seminar):
    seminar = make_seminar()
    nine = datetime(2027, 3, 4, 9, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    _queue(seminar, "mail.reminder", 600, nine)
    _queue(seminar, "mail.confirm_address", 5, nine)  # a person's mail is not bulk: left alone
    assert mail_schedule.start_early(nine - timedelta(minutes=25)) == 0
    assert mail_schedule.start_early(nine - timedelta(minutes=22)) == 0
    twenty_to = nine - timedelta(minutes=20)
    assert mail_schedule.start_early(twenty_to) == 600
    assert set(_due_times("mail.reminder")) == {twenty_to}
    assert set(_due_times("mail.confirm_address")) == {nine}


def test_a_fan_out_already_waiting_pulls_the_next_one_earlier(app, make_seminar):
    seminar = make_seminar()
    now = utcnow()
    _queue(seminar, "mail.seminar_changed", 300, now)  # 10 minutes' worth, being sent
    _queue(seminar, "mail.reminder", 30, now + timedelta(minutes=10))
    assert mail_schedule.start_early(now) == 30


def _day_quota(app, text: str) -> None:
    app.config["MAIL_RATE_LIMIT"] = text
    app.extensions.pop(mail_schedule.BUDGET_KEY, None)


def test_a_backlog_bigger_than_a_days_quota_leaves_tomorrows_reminders_for_tomorrow(app, make_seminar):
    _day_quota(app, "30/minute;500/day")
    seminar = make_seminar()
    now = datetime(2027, 3, 3, 13, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    nine = datetime(2027, 3, 4, 9, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    _queue(seminar, "mail.seminar_changed", 600, now - timedelta(minutes=1))  # more than today's quota
    _queue(seminar, "mail.reminder", 60, nine)
    _queue(seminar, "mail.host_digest", 10, now + timedelta(minutes=20))  # due while the backlog drains
    # The backlog at the pace (600 at a hair under 30 a minute: 21 minutes) is ahead of the
    # digests: they are made due now, and still go out after their due time. Tomorrow's reminders
    # would go out today, 20 hours early, if they were moved: they stay.
    assert mail_schedule.start_early(now) == 10
    assert set(_due_times("mail.host_digest")) == {now}
    assert set(_due_times("mail.reminder")) == {nine}


def test_a_fan_out_bigger_than_a_days_quota_starts_only_as_early_as_its_pace_needs(app, make_seminar):
    _day_quota(app, "30/minute;500/day")
    seminar = make_seminar()
    nine = datetime(2027, 3, 4, 9, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    _queue(seminar, "mail.reminder", 600, nine)
    # Sent the day before, they would take from the same rolling day's quota: nothing gained.
    assert mail_schedule.start_early(nine - timedelta(hours=20)) == 0
    assert mail_schedule.start_early(nine - timedelta(minutes=22)) == 0
    assert mail_schedule.start_early(nine - timedelta(minutes=20)) == 600


def test_a_job_moves_only_as_far_as_the_group_due_with_it_needs(app, make_seminar):
    seminar = make_seminar()
    nine = datetime(2027, 3, 4, 9, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    _queue(seminar, "mail.host_digest", 1, nine - timedelta(minutes=5))
    _queue(seminar, "mail.reminder", 600, nine)
    # At 08:39 the 601 due by 09:00 need to start (21 minutes at a hair under 30 a minute): the
    # reminders move, and the digest due at 08:55 with them (left at 08:55 it would be claimed
    # after all 600 reminders, five minutes late).
    assert mail_schedule.start_early(nine - timedelta(minutes=21, seconds=30)) == 0
    assert mail_schedule.start_early(nine - timedelta(minutes=21)) == 601
    assert set(_due_times("mail.host_digest")) == {nine - timedelta(minutes=21)}


def test_an_hours_quota_moves_a_fan_out_forward_by_whole_hours(app, make_seminar):
    _day_quota(app, "300/hour")
    seminar = make_seminar()
    nine = datetime(2027, 3, 4, 9, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    _queue(seminar, "mail.reminder", 600, nine)
    assert mail_schedule.start_early(nine - timedelta(minutes=61)) == 0
    assert mail_schedule.start_early(nine - timedelta(minutes=60)) == 600


def test_without_a_known_quota_nothing_moves(app, make_seminar):
    app.config["MAIL_RATE_LIMIT"] = None
    app.extensions.pop(mail_schedule.BUDGET_KEY, None)
    seminar = make_seminar()
    nine = utcnow() + timedelta(minutes=1)
    _queue(seminar, "mail.reminder", 600, nine)
    assert mail_schedule.start_early(utcnow()) == 0


def test_portal_says_when_a_running_fan_out_will_be_done(app, client, make_seminar):
    seminar = make_seminar()
    now = utcnow()
    _queue(seminar, "mail.seminar_changed", 61, now - timedelta(seconds=1))
    progress = mail_schedule.progress(seminar, now)
    assert progress.left == 61
    # 61 mails at (a hair under) 30 a minute: about two minutes.
    assert timedelta(minutes=2) <= progress.done_at - now <= timedelta(minutes=2, seconds=10)
    make_user("org@bmk.example")
    Staff(client, "org@bmk.example").logged_in()
    page = client.get(f"/manage/seminars/{seminar.id}").get_data(as_text=True)
    assert 'id="mail-progress"' in page and "61" in page


def test_portal_shows_throttling_and_a_used_up_quota(app, client):
    make_user("org@bmk.example")
    staff = Staff(client, "org@bmk.example").logged_in()
    assert 'id="relay-' not in client.get("/manage/").get_data(as_text=True)
    budget = mail_schedule.budget()
    budget.report(classify(454, THROTTLED[4:]))
    assert 'id="relay-throttled"' in client.get("/manage/outbox").get_data(as_text=True)
    budget.report(classify(554, QUOTA_EXCEEDED[4:]))
    page = client.get("/manage/").get_data(as_text=True)
    assert 'id="relay-held"' in page and "SubmissionQuotaExceeded" in page
    assert staff


def test_organisers_get_one_mail_when_mail_is_held_for_over_an_hour(app):
    make_user("org@bmk.example")
    make_user("org2@bmk.example")
    make_user("host@bmk.example", role="host")
    budget = mail_schedule.budget()
    budget.report(classify(554, QUOTA_EXCEEDED[4:]))
    since = datetime.fromtimestamp(budget.status().held_since, timezone.utc)
    assert relay_notice.alert_if_held(since + timedelta(minutes=59)) == 0
    assert relay_notice.alert_if_held(since + timedelta(minutes=61)) == 2
    assert relay_notice.alert_if_held(since + timedelta(minutes=90)) == 0  # once per hold
    alerts = list(db.session.scalars(select(Job).where(Job.kind == "mail.relay_held")))
    assert len(alerts) == 2
    budget.report(None)  # mail goes through again: the hold is over
    assert budget.status().held_since is None


def test_the_mail_to_organisers_quotes_the_relay_without_addresses(app):
    from seminar.manage import mails as portal_mails
    from seminar.models import User

    make_user("org@bmk.example")
    mail_schedule.budget().report(classify(554, QUOTA_EXCEEDED[4:] + " for fenna@kdv-zonnetje.example"))
    user = db.session.scalar(select(User).where(User.email == "org@bmk.example"))
    composed = portal_mails.relay_held(Job(kind="mail.relay_held", payload={"user_id": user.id}), user)
    text = " ".join(str(p) for p in composed.paragraphs)
    assert "SubmissionQuotaExceeded" in text and "fenna@" not in text


def test_nothing_moves_earlier_while_the_quota_is_used_up(app, make_seminar):
    seminar = make_seminar()
    nine = datetime(2027, 3, 4, 9, 0, tzinfo=AMSTERDAM).astimezone(timezone.utc)
    _queue(seminar, "mail.reminder", 600, nine)
    mail_schedule.budget().report(classify(554, QUOTA_EXCEEDED[4:]))
    assert mail_schedule.start_early(nine - timedelta(minutes=20)) == 0
    assert set(_due_times("mail.reminder")) == {nine}
