"""The outbox: jobs written in the causing transaction through their kind, an intent's key unique
while its job is pending (procrastinate's queueing lock), once-only keys, keys looked up together."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from seminar.database import write_transaction
from seminar.extensions import db
from seminar.jobs import kinds, outbox
from seminar.jobs.runner import claim
from seminar.models import Job, JobState, Lane, Registration
from seminar.programme.service import update_seminar
from seminar.registration.service import SignUpData, confirm, sign_up
from seminar.timeutil import utcnow

from .helpers import jobs


def _seminar_and_registration(make_seminar) -> Registration:
    seminar = make_seminar()
    return sign_up(seminar.id, SignUpData(name="Anouk", email="anouk@kdv.example", organisation="KDV",
                                          location_type="kdv"))


def test_a_key_is_unique_only_among_pending_jobs(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    row = dict(kind=kinds.REMINDER.name, lane=Lane.BULK, key=f"reminder:{reg.id}:24", payload={},
               due_at=utcnow(), registration_id=reg.id, seminar_id=reg.seminar_id)
    table = Job.__table__
    db.session.execute(insert(table), [dict(row, state=JobState.DONE), dict(row, state=JobState.FAILED),
                                       dict(row, state=JobState.PENDING)])
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(insert(table), [dict(row, state=JobState.PENDING)])
    db.session.rollback()
    db.session.execute(insert(table), [dict(row, state=JobState.CLAIMED)])  # running: no hold
    db.session.commit()


def test_asking_again_while_pending_queues_once_while_running_queues_one_more(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    key = f"reminder:{reg.id}:24"
    first = kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24) is first
    db.session.commit()
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24).id == first.id
    db.session.rollback()
    [claimed] = [job for job in claim("worker-a", utcnow() + timedelta(seconds=1)) if job.id == first.id]
    again = kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24) is again
    db.session.commit()
    # Runs after the one that read older data, and holds the key: a third ask finds it.
    assert again.id != claimed.id and again.key == key
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24).id == again.id
    db.session.execute(db.update(Job).where(Job.id == first.id).values(state=JobState.DONE))
    db.session.commit()
    assert kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24).id == again.id
    db.session.commit()
    assert [j.id for j in jobs(kinds.REMINDER.name, state="pending")] == [again.id]


def test_a_job_handed_back_while_its_key_is_held_is_superseded(app, make_seminar):
    """The runner hands a running job back (retry, defer, release) after the same intent was
    queued again: the newer pending job keeps the key, the old one is closed, not an error."""
    from seminar.jobs.recorder import Recorder
    from seminar.jobs.runner import Batch
    reg = _seminar_and_registration(make_seminar)
    kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    db.session.commit()
    now = utcnow() + timedelta(seconds=1)
    [running] = [j for j in claim("worker-a", now) if j.kind == kinds.REMINDER.name]
    newer = kinds.REMINDER.enqueue(registration=reg, due_at=utcnow(), hours=24)
    db.session.commit()
    newer_id = newer.id
    assert Recorder(Batch("worker-a", now)).retry(running, "relay said 451")
    db.session.rollback()
    old = db.session.get(Job, running.id)
    assert (old.state, old.last_error) == (JobState.DONE, "superseded")
    assert [j.id for j in jobs(kinds.REMINDER.name, state="pending")] == [newer_id]


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


def test_jobs_are_written_in_the_causing_transaction(app, make_seminar):
    reg = _seminar_and_registration(make_seminar)
    before = len(jobs())
    with pytest.raises(RuntimeError):
        with write_transaction():
            kinds.REMINDER.enqueue(registration=db.session.get(Registration, reg.id), due_at=utcnow(), hours=1)
            raise RuntimeError("the change fails")
    assert len(jobs()) == before


def test_a_moved_seminar_queues_one_update_per_attendee_and_looks_the_keys_up_together(app, make_seminar):
    seminar = make_seminar(capacity=5)
    regs = [sign_up(seminar.id, SignUpData(name=f"P{i}", email=f"p{i}@kdv.example", organisation="KDV",
                                           location_type="kdv")) for i in range(3)]
    for reg in regs:
        confirm(reg.id)
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=1))
    update_seminar(seminar.id, start_at=seminar.start_at + timedelta(days=2))  # before anything went out
    changed = jobs(kinds.SEMINAR_CHANGED.name)
    assert sorted(job.key for job in changed) == sorted(f"changed:{reg.id}" for reg in regs)
    assert all(job.payload["method"] == "REQUEST" for job in changed)
    outbox.look_up([f"changed:{regs[0].id}", "changed:0"])
    assert outbox.queued(f"changed:{regs[0].id}").id == changed[0].id and outbox.queued("changed:0") is None
    db.session.rollback()


def test_an_intent_queued_meanwhile_by_another_transaction_is_the_answer(app, make_seminar):
    """Two Zoom webhooks at once both look `check:{seminar}` up, find nothing and insert: the
    second gets the first one's job instead of an IntegrityError (a 500 for the platform)."""
    reg = _seminar_and_registration(make_seminar)
    seminar_id = reg.seminar_id
    key = kinds.CHECK_MEETING.key_for(seminar_id=seminar_id)
    with db.engine.begin() as other:  # the other request, committed between look-up and insert
        other.execute(insert(Job.__table__), [dict(
            kind=kinds.CHECK_MEETING.name, lane=Lane.BULK, key=key, payload={}, due_at=utcnow(),
            seminar_id=seminar_id, state=JobState.PENDING)])
    with write_transaction():
        reg = db.session.get(Registration, reg.id)
        reg.function = "pedagogisch medewerker"  # the rest of the transaction still commits
        job = outbox.add(kinds.CHECK_MEETING.name, Lane.BULK, key, seminar=reg.seminar)
    assert job.id is not None and len(jobs(kinds.CHECK_MEETING.name)) == 1
    assert db.session.get(Registration, reg.id).function == "pedagogisch medewerker"
