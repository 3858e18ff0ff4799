"""Issue 14, finding 4: erasing a person (and the retention purge) covers every stored copy of a
sent mail that names them, also a host's attendee list; export lists those copies. The test
searches the whole database afterwards."""
from __future__ import annotations

import email
import email.policy
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from seminar import privacy
from seminar.extensions import db
from seminar.models import Job
from seminar.programme.service import create_seminar
from seminar.timeutil import utcnow

from .helpers import future, work
from .portal_helpers import attendee, make_user

HOST = "hanna@bmk.example"
NAME, EMAIL, ORGANISATION = "Wendelien Zoekbaar", "wendelien@vindbaar.example", "KDV Speurneus"


def everything_stored() -> str:
    """Every value in every table, as text."""
    out = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            out.append(repr(tuple(row)))
    return "\n".join(out)


@pytest.fixture
def listed(app):
    """A seminar whose host got the attendee list, naming our person, and one other attendee."""
    make_user(HOST, role="host", name="Hanna Host")
    seminar = create_seminar(title="Trauma-sensitief werken", start_at=future(days=10),
                             duration_minutes=90, capacity=5, hosts=[HOST], publish=True)
    person = attendee(seminar, NAME, EMAIL, organisation=ORGANISATION)
    attendee(seminar, "Bram Jansen", "bram@bso.example")
    work(now=seminar.start_at - timedelta(hours=23))
    db.session.expire_all()
    digest = db.session.scalar(select(Job).where(Job.kind == "mail.host_digest", Job.state == "done"))
    assert digest is not None and digest.message
    sent = email.message_from_string(digest.message, policy=email.policy.default)
    assert NAME in sent.get_body(preferencelist=("plain",)).get_content()
    return seminar, person


def test_erase_covers_the_host_list_that_named_the_person(app, runner, listed):
    exported = json.loads(runner.invoke(args=["privacy", "export", "--email", EMAIL]).output)
    assert [m["kind"] for m in exported["registrations"][0]["named_in"]] == ["host_digest"]

    result = runner.invoke(args=["privacy", "erase", "--email", EMAIL, "--yes"])
    assert result.exit_code == 0, result.output
    work()  # the cancellation mail the erase queued is dropped, not sent
    db.session.expire_all()
    stored = everything_stored()
    for value in (NAME, EMAIL, ORGANISATION, "Wendelien", "wendelien@"):
        assert value not in stored, value
    assert "Bram Jansen" in stored  # only their own data went


def test_retention_purge_covers_the_host_lists(app, listed):
    seminar, _ = listed
    later = seminar.end_at + timedelta(days=app.config["RETENTION_DAYS"], minutes=1)
    report = privacy.purge(now=later)
    assert report.total == 2
    db.session.expire_all()
    stored = everything_stored()
    for value in (NAME, EMAIL, ORGANISATION, "Bram Jansen", "bram@bso.example"):
        assert value not in stored, value
    assert utcnow() < later
