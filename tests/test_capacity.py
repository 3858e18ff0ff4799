"""Capacity is never exceeded, also when many people confirm at the same moment."""
from __future__ import annotations

import threading

import pytest

from seminar.extensions import db
from seminar.models import Job, Registration
from seminar.registration.service import SignUpData, cancel, confirm, sign_up


def pending_registrations(seminar, n):
    return [
        sign_up(seminar.id, SignUpData(name=f"Persoon {i}", email=f"p{i}@kinderopvang.example",
                                       organisation="KDV", location_type="kdv")).id
        for i in range(n)
    ]


def all_at_once(app, action, ids):
    """Run `action(id)` for every id in its own thread and app context, released together."""
    start = threading.Barrier(len(ids))
    errors = []

    def run(reg_id):
        with app.app_context():
            try:
                start.wait(30)
                action(reg_id)
            except Exception as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def statuses():
    db.session.rollback()  # end our own read snapshot: see what the threads committed
    rows = db.session.execute(db.select(Registration.status, db.func.count()).group_by(Registration.status))
    return dict(rows.all())


@pytest.mark.parametrize("capacity, people", [(10, 60), (1, 25)])
def test_concurrent_confirmations_never_exceed_capacity(app, make_seminar, capacity, people):
    seminar = make_seminar(capacity=capacity)
    ids = pending_registrations(seminar, people)
    all_at_once(app, confirm, ids)
    assert statuses() == {"confirmed": capacity, "waitlisted": people - capacity}
    # Everyone is told: a platform add (then seat mail) per seat, a waitlist mail per waiter.
    kinds = db.session.execute(db.select(Job.kind, db.func.count()).group_by(Job.kind)).all()
    kinds = dict(kinds)
    assert kinds["video.add_attendee"] == capacity
    assert kinds["mail.waitlisted"] == people - capacity


def test_concurrent_cancellations_promote_each_waiter_once(app, make_seminar):
    seminar = make_seminar(capacity=5)
    ids = pending_registrations(seminar, 15)
    for reg_id in ids:
        confirm(reg_id)
    seated = ids[:5]
    all_at_once(app, cancel, seated)
    assert statuses() == {"cancelled": 5, "confirmed": 5, "waitlisted": 5}
    promoted = db.session.scalars(db.select(Registration.id).where(Registration.status == "confirmed")).all()
    assert sorted(promoted) == ids[5:10]  # first come, first served


def test_two_hundred_confirmations_for_the_last_ten_seats(app, make_seminar):
    seminar = make_seminar(capacity=50)
    for reg_id in pending_registrations(seminar, 40):
        confirm(reg_id)
    late = [
        sign_up(seminar.id, SignUpData(name=f"Laat {i}", email=f"laat{i}@kinderopvang.example",
                                       organisation="BSO", location_type="bso")).id
        for i in range(200)
    ]
    all_at_once(app, confirm, late)
    db.session.rollback()
    counts = db.session.execute(
        db.select(Registration.status, db.func.count()).where(Registration.id.in_(late))
        .group_by(Registration.status)).all()
    assert dict(counts) == {"confirmed": 10, "waitlisted": 190}  # nothing lost, nothing extra
    assert seminar.confirmed_count == 50
    positions = db.session.scalars(db.select(Registration.waitlisted_at).where(
        Registration.status == "waitlisted")).all()
    assert len(positions) == 190 and all(positions)


def test_one_address_signing_up_many_times_at_once_gets_one_registration(app, make_seminar):
    # A double (or twelvefold) click: sign-ups do not wait for each other, so the unique index on
    # active registrations and the lock on the existing one decide. One registration, a fresh
    # confirmation link for every sign-up, no error.
    seminar_id = make_seminar().id
    data = SignUpData(name="Anouk de Vries", email="Anouk@Kinderopvang.example", organisation="KDV",
                      location_type="kdv")
    all_at_once(app, lambda _: sign_up(seminar_id, data), list(range(12)))
    assert statuses() == {"pending": 1}
    reg = db.session.scalars(db.select(Registration)).one()
    assert reg.confirm_mails == 12
    mails = db.session.scalars(db.select(Job.registration_id).where(Job.kind == "mail.confirm_address")).all()
    assert mails == [reg.id] * 12


def test_signing_up_again_after_cancelling_makes_a_new_registration(app, make_seminar):
    seminar = make_seminar()
    data = SignUpData(name="Anouk", email="anouk@kinderopvang.example", organisation="KDV",
                      location_type="kdv")
    first = sign_up(seminar.id, data)
    confirm(first.id)
    cancel(first.id)
    second = sign_up(seminar.id, data)
    assert second.id != first.id and second.status == "pending" and second.confirm_mails == 1
    assert statuses() == {"cancelled": 1, "pending": 1}
