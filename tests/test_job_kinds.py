"""Job kinds are declared once (seminar/jobs/kinds.py), and status columns hold only their enum's
values. (Keys: test_outbox.py; claiming: test_runner.py.)"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from seminar.extensions import db
from seminar.jobs import kinds
from seminar.models import Lane, Registration, RegistrationStatus
from seminar.registration.service import SignUpData, sign_up

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
