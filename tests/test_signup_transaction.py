"""The sign-up's transaction (registration/service.py): a new address is stored by three statements
on a connection of their own (database.write_connection), a known one through the ORM; both
keep what write_transaction promised."""
from __future__ import annotations

from sqlalchemy import func, select

from seminar.extensions import db
from seminar.jobs import kinds
from seminar.models import Job, Registration
from seminar.reach.models import Subscriber, SubscriberStatus
from seminar.registration.service import SignUpData, sign_up, sign_up_at


def data(email: str = "anouk@kdv.example", name: str = "Anouk") -> SignUpData:
    return SignUpData(name=name, email=email, organisation="KDV De Bolder", location_type="kdv")


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_work_the_session_had_open_is_committed_first(app, make_seminar):
    seminar = make_seminar()
    # Something this request added before signing up (not yet committed): the sign-up commits it
    # first, as write_transaction does, instead of waiting on it or leaving it to be lost.
    db.session.add(Subscriber(email="bram@kdv.example", email_normalized="bram@kdv.example",
                              status=SubscriberStatus.PENDING))
    reg_id = sign_up_at(seminar.slug, data())
    db.session.rollback()  # nothing of it was left uncommitted
    assert count(Subscriber) == 1
    assert count(Registration, Registration.id == reg_id) == 1
    assert count(Job, Job.registration_id == reg_id, Job.kind == kinds.CONFIRM_ADDRESS.name) == 1


def test_a_known_address_and_a_new_one_in_turn(app, make_seminar):
    seminar = make_seminar()
    first = sign_up(seminar.id, data())
    again = sign_up(seminar.id, data(name="Anouk de Vries"))
    other = sign_up(seminar.id, data("bram@kdv.example", "Bram"))
    assert again.id == first.id and again.name == "Anouk de Vries" and again.confirm_mails == 2
    assert other.id != first.id and other.confirm_mails == 1
    assert count(Registration) == 2
    assert count(Job, Job.kind == kinds.CONFIRM_ADDRESS.name) == 3
