"""Abuse protection: Flask-Limiter on sign-up (per client and per address) and confirmation,
with counters in Redis shared by several instances."""
from __future__ import annotations

import uuid

import pytest
import redis

from seminar.extensions import db
from seminar.models import Registration

from .helpers import Person, csrf_from, make_app


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True, "SIGNUP_RATE_LIMIT": "3 per minute",
            "SIGNUP_ADDRESS_RATE_LIMIT": "2 per hour", "CONFIRM_RATE_LIMIT": "2 per minute"}


def post_from(client, seminar, address, ip, **data):
    page = client.get(f"/seminars/{seminar.slug}", environ_base={"REMOTE_ADDR": ip})
    form = dict(Person(client).data, csrf_token=csrf_from(page.get_data(as_text=True)), email=address, **data)
    return client.post(f"/seminars/{seminar.slug}", data=form, environ_base={"REMOTE_ADDR": ip})


def test_one_client_address_is_slowed_down(client, make_seminar):
    seminar = make_seminar()
    codes = [post_from(client, seminar, f"p{i}@kdv.example", "192.0.2.1").status_code for i in range(4)]
    assert codes == [303, 303, 303, 429]
    page = post_from(client, seminar, "p9@kdv.example", "192.0.2.1").get_data(as_text=True)
    assert "Te veel pogingen" in page
    assert post_from(client, seminar, "p9@kdv.example", "192.0.2.2").status_code == 303  # others go on
    assert db.session.scalar(db.select(db.func.count(Registration.id))) == 4


def test_one_address_cannot_be_flooded_from_many_clients(client, make_seminar):
    seminar = make_seminar()
    codes = [post_from(client, seminar, "slachtoffer@kdv.example", f"198.51.100.{i}").status_code
             for i in range(3)]
    assert codes == [303, 303, 429]


def test_confirmation_is_limited(client, make_seminar):
    seminar = make_seminar()
    token = csrf_from(client.get(f"/seminars/{seminar.slug}").get_data(as_text=True))
    codes = [client.post(f"/r/confirm/guess{i}", data={"csrf_token": token},
                         environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code for i in range(3)]
    assert codes == [404, 404, 429]  # guessing links is slowed down too


def test_limits_are_shared_through_redis(db_url, tmp_path, make_seminar):
    """Two instances with RATELIMIT_STORAGE_URI=redis://… count together."""
    settings = dict(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                    SIGNUP_RATE_LIMIT="2 per minute")
    seminar = make_seminar()
    apps = [make_app(db_url, tmp_path / name, **settings) for name in ("a", "b")]
    first, second = (a.test_client() for a in apps)
    # A client address of this run only (2001:db8::/32 is for documentation), so counters left in
    # the shared Redis by other runs cannot interfere.
    ip = f"2001:db8::{uuid.uuid4().hex[:4]}"
    tag = uuid.uuid4().hex[:6]
    assert post_from(first, seminar, f"a1-{tag}@kdv.example", ip).status_code == 303
    assert post_from(second, seminar, f"a2-{tag}@kdv.example", ip).status_code == 303
    assert post_from(first, seminar, f"a3-{tag}@kdv.example", ip).status_code == 429
    assert redis.Redis.from_url("redis://127.0.0.1:6379/0").keys(f"*{ip}*")  # counted in Redis
    for other in apps:  # close their pooled connections now, not whenever they are collected
        with other.app_context():
            db.engine.dispose()
