"""Attendance from Teams (Graph's attendance reports, through the Graph stand-in) and from Jitsi
(the first use of a person's join link during the seminar)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from seminar.attendance.service import summary
from seminar.database import WRITE_LOCK
from seminar.extensions import db
from seminar.models import AttendanceEvent, Registration, Seminar
from seminar.timeutil import utcnow
from seminar.tokens import make_token
from seminar.video.base import platform_meeting_id
from tests.standins.graph import GraphStandIn

from .helpers import future, jobs, work
from .video_kit import confirm_many, fresh

USER = "organiser@bmk.example"


class TestTeams:
    @pytest.fixture
    def graph(self):
        with GraphStandIn(tenant="bmk-tenant", known_users=[USER]) as server:
            yield server
            server.assert_clean()

    @pytest.fixture
    def app_config(self, graph):
        return {"VIDEO_PROVIDER": "teams", "TEAMS_TENANT_ID": "bmk-tenant", "TEAMS_CLIENT_ID": graph.client_id,
                "TEAMS_CLIENT_SECRET": graph.client_secret, "TEAMS_USER_ID": USER,
                "GRAPH_API_BASE": graph.api_base, "GRAPH_TOKEN_URL": graph.token_url}

    def test_attendance_records_from_the_report_are_merged_and_matched_by_address(self, app, graph, make_seminar):
        start = future(days=2)
        seminar = make_seminar(start_at=start, duration_minutes=90)
        work()
        a, b, c = (fresh(Registration, i) for i in confirm_many(seminar, 3))
        work()
        meeting = platform_meeting_id(fresh(Seminar, seminar.id))
        m = lambda n: start + timedelta(minutes=n)  # noqa: E731
        graph.add_attendance(meeting, a.email.upper(), a.name, [(m(0), m(30)), (m(32), m(90))])
        graph.add_attendance(meeting, b.email, b.name, [(m(10), m(40))])
        graph.add_attendance(meeting, "", "Bellen vanaf 06-12345678", [(m(0), m(90))], role="Unknown")
        graph.add_attendance(meeting, c.email, c.name, [(m(60), m(95))], report=1)  # the meeting restarted

        work(now=start + timedelta(minutes=100))
        assert jobs("video.attendance") == []  # the report needs a while after the end
        work(now=start + timedelta(hours=3))
        assert [job.state for job in jobs("video.attendance")] == ["done"]
        # Three records in the first report, two per page: the second page was asked for.
        assert [c.query for c in graph.calls if c.path.endswith("/attendanceRecords")].count({"$skiptoken": "2"}) == 1
        result = summary(fresh(Seminar, seminar.id))
        found = {row.registration.email: (row.minutes, row.attended, row.source) for row in result.rows}
        assert found == {a.email: (88, True, "teams"), b.email: (30, False, "teams"), c.email: (35, False, "teams")}
        assert [g.label for g in result.guests] == ["Bellen vanaf 06-12345678"]


class TestJitsi:
    def test_the_first_use_of_the_join_link_during_the_seminar_counts_as_joined(self, app, client, make_seminar):
        seminar = make_seminar(start_at=utcnow() + timedelta(minutes=10), duration_minutes=60)
        work()
        [reg_id] = confirm_many(seminar, 1)
        work()
        reg = fresh(Registration, reg_id)
        link = f"/r/join/{make_token('join', reg)}"
        assert client.get(link).status_code == 302
        assert client.get(link).status_code == 302  # a second use changes nothing
        [event] = db.session.scalars(db.select(AttendanceEvent)).all()
        assert (event.registration_id, event.event, event.source) == (reg.id, "joined", "jitsi")
        [row] = summary(fresh(Seminar, seminar.id)).rows
        assert (row.minutes, row.attended, row.source, row.joined_at is not None) == (0, False, "jitsi", True)

    def test_later_uses_of_the_link_only_read(self, app, client, make_seminar):
        """The whole room clicks at the start: only a first use waits for the write lock."""
        seminar = make_seminar(start_at=utcnow() + timedelta(minutes=10), duration_minutes=60)
        work()
        [reg_id] = confirm_many(seminar, 1)
        work()
        link = f"/r/join/{make_token('join', fresh(Registration, reg_id))}"
        writers = []

        def begun(conn):
            if conn.get_execution_options().get(WRITE_LOCK):
                writers.append(1)

        event.listen(db.engine, "begin", begun)
        try:
            assert client.get(link).status_code == 302 and len(writers) == 1
            assert client.get(link).status_code == 302 and len(writers) == 1
        finally:
            event.remove(db.engine, "begin", begun)

    def test_a_failed_record_still_takes_the_person_to_the_seminar(self, app, client, make_seminar, caplog):
        seminar = make_seminar(start_at=utcnow() + timedelta(minutes=10), duration_minutes=60)
        work()
        [reg_id] = confirm_many(seminar, 1)
        work()
        reg = fresh(Registration, reg_id)
        # The database refuses the write for real (a trigger on both backends).
        if db.engine.dialect.name == "sqlite":
            db.session.execute(db.text("CREATE TRIGGER refuse BEFORE INSERT ON attendance_event "
                                       "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            db.session.execute(db.text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                                       "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"))
            db.session.execute(db.text("CREATE TRIGGER refuse BEFORE INSERT ON attendance_event "
                                       "FOR EACH ROW EXECUTE FUNCTION refuse()"))
        db.session.commit()
        response = client.get(f"/r/join/{make_token('join', reg)}")
        assert response.status_code == 302 and response.location == reg.join_url
        assert "not recorded" in caplog.text
        assert reg.email not in caplog.text and reg.name not in caplog.text
        assert db.session.scalar(db.select(db.func.count(AttendanceEvent.id))) == 0

    def test_a_link_opened_long_before_the_seminar_is_not_attendance(self, app, client, make_seminar):
        seminar = make_seminar(start_at=future(days=3), duration_minutes=60)
        work()
        [reg_id] = confirm_many(seminar, 1)
        work()
        assert client.get(f"/r/join/{make_token('join', fresh(Registration, reg_id))}").status_code == 302
        assert db.session.scalar(db.select(db.func.count(AttendanceEvent.id))) == 0
