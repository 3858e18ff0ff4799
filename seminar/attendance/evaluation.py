"""The short built-in evaluation: overall mark 1-10, usefulness for practice 1-5, one open question.

One answer per attendee: the registration is marked `evaluated` with a conditional UPDATE, so two
submissions at once store one answer. The answer row holds no registration, no time and nothing
else that leads back to the person.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select, update

from ..database import write_transaction
from ..exports import excel_csv, safe_cell
from ..extensions import db
from ..models import Registration, RegistrationStatus, Seminar
from .models import EvaluationAnswer


def may_evaluate(registration: Registration) -> bool:
    # The link is only ever mailed in the follow-up, after the seminar; its token says "evaluate".
    seminar = registration.seminar
    return registration.status == RegistrationStatus.CONFIRMED and not seminar.is_cancelled and not seminar.evaluation_url


def answer(registration_id: int, overall: int, usefulness: int, comment: str) -> bool:
    """Store one answer; False when this registration has answered before (nothing stored)."""
    if not (1 <= overall <= 10 and 1 <= usefulness <= 5):
        raise ValueError("mark out of range")
    with write_transaction():
        seminar_id = db.session.scalar(select(Registration.seminar_id).where(Registration.id == registration_id))
        marked = db.session.execute(
            update(Registration).where(Registration.id == registration_id, Registration.evaluated.is_(False))
            .values(evaluated=True).execution_options(synchronize_session=False)).rowcount
        if marked != 1:
            return False
        db.session.add(EvaluationAnswer(seminar_id=seminar_id, overall=overall, usefulness=usefulness,
                                        comment=(comment or "").strip()[:2000]))
    return True


@dataclass
class Results:
    count: int = 0
    overall_average: float | None = None
    usefulness_average: float | None = None
    overall: Counter = field(default_factory=Counter)
    usefulness: Counter = field(default_factory=Counter)
    comments: list[str] = field(default_factory=list)


def results(seminar: Seminar) -> Results:
    answers = db.session.scalars(select(EvaluationAnswer).where(EvaluationAnswer.seminar_id == seminar.id)
                                 .order_by(EvaluationAnswer.id)).all()
    found = Results(count=len(answers))
    if answers:
        found.overall_average = round(sum(a.overall for a in answers) / len(answers), 1)
        found.usefulness_average = round(sum(a.usefulness for a in answers) / len(answers), 1)
        found.overall = Counter(a.overall for a in answers)
        found.usefulness = Counter(a.usefulness for a in answers)
        # Shown in an order of their own, so the list does not reveal who answered when.
        found.comments = sorted(a.comment for a in answers if a.comment)
    return found


CSV_HEADER = ["Cijfer (1-10)", "Bruikbaarheid (1-5)", "Opmerking"]


def as_csv(seminar: Seminar) -> bytes:
    """Every answer, for Dutch Excel (UTF-8 BOM, `;`), sorted so the order tells nothing."""
    answers = db.session.scalars(select(EvaluationAnswer).where(EvaluationAnswer.seminar_id == seminar.id)).all()
    rows = sorted(([a.overall, a.usefulness, safe_cell(a.comment)] for a in answers),
                  key=lambda r: (r[0], r[1], r[2]))
    return excel_csv(CSV_HEADER, rows)
