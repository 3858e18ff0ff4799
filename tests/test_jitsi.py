"""Jitsi Meet (the default): an unguessable room per seminar; with JITSI_APP_ID/SECRET a signed
JWT per attendee for a self-hosted Jitsi with token authentication."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from seminar.models import Seminar
from seminar.programme.service import cancel_seminar, update_seminar

from .helpers import links_in, work
from .helpers import jobs
from .video_kit import fresh, join_target, mails_to, seat_mails, sign_up_through_site

SECRET = "jitsi-app-secret-for-tests-0123456789"


def test_each_seminar_gets_an_unguessable_room(app, make_seminar):
    rooms = set()
    for _ in range(20):
        seminar = make_seminar()
        work()
        seminar = fresh(Seminar, seminar.id)
        assert seminar.video_provider == "jitsi"
        assert seminar.meeting_join_url == f"https://meet.jit.si/{seminar.room_name}"
        rooms.add(seminar.room_name)
    assert len(rooms) == 20
    # ~140 bits of randomness: nobody finds a room by trying names.
    assert all(len(room) >= 24 and room.startswith("bmk-") for room in rooms)


def test_the_flow_without_tokens(app, client, make_seminar):
    seminar = make_seminar()
    work()
    sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
    work()
    assert join_target(client, app, "anouk@kinderopvang.example") == f"https://meet.jit.si/{seminar.room_name}"
    cancel_seminar(seminar.id)
    work()
    [mail] = [m for m in mails_to(app, "anouk@kinderopvang.example") if "join" in links_in(m)]
    assert client.get(links_in(mail)["join"].replace("http://seminar.test", "")).status_code == 410


class TestWithTokenAuthentication:
    @pytest.fixture
    def app_config(self):
        return {"JITSI_BASE_URL": "https://meet.bmk.example", "JITSI_APP_ID": "bmk-seminars",
                "JITSI_APP_SECRET": SECRET}

    def claims(self, url: str) -> dict:
        token = parse_qs(urlsplit(url).query)["jwt"][0]
        return jwt.decode(token, SECRET, algorithms=["HS256"], audience="jitsi",
                          options={"verify_nbf": False, "verify_exp": False})

    def test_only_registered_people_get_a_signed_link(self, app, client, make_seminar):
        seminar = make_seminar(duration_minutes=90)
        work()
        sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
        sign_up_through_site(app, client, seminar, "Bram Jansen", "bram@bso.example")
        work()
        anouk = join_target(client, app, "anouk@kinderopvang.example")
        bram = join_target(client, app, "bram@bso.example")
        assert anouk.startswith(f"https://meet.bmk.example/{seminar.room_name}?jwt=") and anouk != bram
        claims = self.claims(anouk)
        assert claims["iss"] == "bmk-seminars" and claims["aud"] == "jitsi"
        assert claims["sub"] == "meet.bmk.example" and claims["room"] == seminar.room_name
        assert claims["context"]["user"] == {"name": "Anouk de Vries", "email": "anouk@kinderopvang.example"}
        end = seminar.start_at + timedelta(minutes=90)
        assert claims["exp"] == int((end + timedelta(hours=2)).timestamp())
        assert self.claims(bram)["context"]["user"]["name"] == "Bram Jansen"
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(parse_qs(urlsplit(anouk).query)["jwt"][0], "another-secret-of-32-bytes-or-more!",
                       algorithms=["HS256"], audience="jitsi")
        assert sorted(seat_mails(app).values()) == [1, 1]

    def test_a_reschedule_signs_the_links_anew(self, app, client, make_seminar):
        seminar = make_seminar()
        work()
        sign_up_through_site(app, client, seminar, "Anouk de Vries", "anouk@kinderopvang.example")
        work()
        before = self.claims(join_target(client, app, "anouk@kinderopvang.example"))
        new_start = seminar.start_at + timedelta(days=7)
        update_seminar(seminar.id, start_at=new_start)
        work()
        [job] = jobs("video.update_meeting")
        assert job.state == "done"
        after = self.claims(join_target(client, app, "anouk@kinderopvang.example"))
        assert after["exp"] - before["exp"] == 7 * 24 * 3600
        assert after["context"] == before["context"]
