"""Job kinds are declared once (seminar/jobs/kinds.py); an intent's key is unique while its job is
still to run; interactive work is claimed first; status columns hold only their enum's values."""
from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError, StatementError

from seminar.extensions import db
from seminar.jobs import kinds
from seminar.jobs.runner import claim
from seminar.models import Job, JobState, Lane, Registration, RegistrationStatus
from seminar.registration.service import SignUpData, sign_up
from seminar.timeutil import utcnow

SEMINAR = Path(__file__).resolve().parent.parent / "seminar"


def test_every_kind_is_declared_once_with_its_handlers(app):
    names = [kind.name for kind in kinds.ALL]
    assert len(names) == len(set(names)) and kinds.BY_NAME.keys() == set(names)
    for kind in kinds.ALL:
        assert callable(kind.run_batch()), kind.name
        assert kind.handler is None or callable(kind.handle()), kind.name
        assert kind.lane in (Lane.INTERACTIVE, Lane.BULK)
        assert str(kind.label) != kind.name
    assert kinds.label("video.no_such_kind") == "video.no_such_kind"


def test_no_module_names_a_kind_but_kinds_py():
    """A kind's name is written once: everywhere else the declaration is used."""
    found = []
    for path in SEMINAR.rglob("*.py"):
        if path == SEMINAR / "jobs" / "kinds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in kinds.BY_NAME:
                found.append(f"{path.relative_to(SEMINAR)}:{node.lineno}: {node.value}")
    assert found == []


def _seminar_and_registration(make_seminar) -> Registration:
    seminar = make_seminar()
    return sign_up(seminar.id, SignUpData(name="Anouk", email="anouk@kdv.example", organisation="KDV",
                                          location_type="kdv"))


def test_a_key_is_unique_only_among_jobs_still_to_run(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    row = dict(kind=kinds.REMINDER.name, lane=Lane.BULK, key=f"reminder:{reg.id}:24", payload={},
               due_at=utcnow(), registration_id=reg.id, seminar_id=reg.seminar_id)
    table = Job.__table__
    db.session.execute(insert(table), [dict(row, state=JobState.DONE), dict(row, state=JobState.FAILED),
                                       dict(row, state=JobState.PENDING)])
    db.session.commit()
    for state in (JobState.PENDING, JobState.CLAIMED):
        with pytest.raises(IntegrityError):
            db.session.execute(insert(table), [dict(row, state=state)])
        db.session.rollback()


def test_asking_again_while_pending_queues_once_while_running_queues_anew(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    first = kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24) is first
    db.session.commit()
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24).id == first.id
    db.session.rollback()
    [claimed] = [job for job in claim("worker-a", utcnow() + timedelta(seconds=1)) if job.id == first.id]
    again = kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    db.session.commit()
    assert again.id != claimed.id and again.key is None  # runs after the one that read older data
    db.session.execute(db.update(Job).values(state=JobState.DONE))
    db.session.commit()
    anew = kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    db.session.commit()
    assert anew.id not in (first.id, again.id) and anew.key == f"reminder:{reg.id}:24"


def test_a_once_key_holds_for_ever(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    seat_mail = kinds.SEAT_CONFIRMED.enqueue(registration=reg, calendar="REQUEST")
    db.session.commit()
    db.session.execute(db.update(Job).where(Job.id == seat_mail.id).values(state=JobState.DONE))
    db.session.commit()
    # Whichever seat mail, however often asked: the registration had it.
    assert kinds.PROMOTED.enqueue(registration=reg, calendar="REQUEST").id == seat_mail.id
    assert kinds.SEAT_CONFIRMED.enqueue(registration=reg, calendar="REQUEST").id == seat_mail.id
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Job.id)).where(Job.key == f"seat-mail:{reg.id}")) == 1


def test_interactive_work_is_claimed_first(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)  # its confirmation mail: interactive, due now
    db.session.execute(db.delete(Job).where(Job.kind != kinds.CONFIRM_ADDRESS.name))  # the meeting's
    early = utcnow() - timedelta(hours=1)
    for hours in (1, 2, 3):
        kinds.REMINDER.enqueue(registration=reg, due_at=early, hours=hours)
    db.session.commit()
    jobs = claim("worker-a", limit=2)
    assert [job.kind for job in jobs] == [kinds.CONFIRM_ADDRESS.name, kinds.REMINDER.name]
    assert [job.lane for job in jobs] == [Lane.INTERACTIVE, Lane.BULK]


@pytest.mark.parametrize("table, column", [("seminar", "state"), ("registration", "status"),
                                           ("job", "state"), ("job", "lane")])
def test_status_columns_take_only_their_values(app, make_seminar, table, column):
    _seminar_and_registration(make_seminar)
    with pytest.raises(IntegrityError):
        db.session.execute(text(f"UPDATE {table} SET {column} = 'bogus'"))
    db.session.rollback()


def test_statuses_are_compared_as_members(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    db.session.expire_all()
    assert reg.status is RegistrationStatus.PENDING and reg.status == "pending" and f"{reg.status}" == "pending"
    reg.status = "nonsense"
    with pytest.raises(StatementError):
        db.session.flush()
    db.session.rollback()
