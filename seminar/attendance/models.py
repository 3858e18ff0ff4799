"""What is kept after a seminar: attendance corrections, certificates and evaluation answers."""
from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models import Registration, Seminar
from ..timeutil import UTCDateTime, utcnow


class AttendanceCorrection(db.Model):
    """An organiser's decision about one person's attendance, with why, who and when. The latest
    one for a registration wins over what the platforms told; the earlier ones stay as history."""

    __table_args__ = (Index("ix_attendance_correction_reg", "registration_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registration.id", ondelete="CASCADE"))
    attended: Mapped[bool]
    minutes: Mapped[int | None] = mapped_column()  # None: keep the platform's minutes
    reason: Mapped[str] = mapped_column(Text, default="")
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    by_label: Mapped[str] = mapped_column(String(254), default="")  # who, also after the account went
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    registration: Mapped[Registration] = relationship()


def new_code() -> str:
    # 128 bits: unguessable, and short enough to type from paper.
    return secrets.token_urlsafe(16)


class Certificate(db.Model):
    """A certificate of attendance. Kept CERTIFICATE_RETENTION_DAYS after the seminar (registers
    check proof long after the course), longer than the registration itself; after that only the
    code stays, so the verification page can say it expired rather than that it never existed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True, default=new_code)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration.id", ondelete="SET NULL"), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    register_number: Mapped[str] = mapped_column(String(30), default="")
    seminar_title: Mapped[str] = mapped_column(String(200), default="")
    seminar_date: Mapped[date | None] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(default=0)
    language: Mapped[str] = mapped_column(String(5), default="nl")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    seminar: Mapped[Seminar] = relationship()
    registration: Mapped[Registration | None] = relationship()

    @property
    def initials(self) -> str:
        return initials(self.name)


def initials(name: str) -> str:
    """'Anouk de Vries' -> 'A. d. V.': enough to recognise, too little to identify."""
    return " ".join(f"{part[0]}." for part in name.split() if part[:1].isalnum()) or "?"


class EvaluationAnswer(db.Model):
    """One answer to the evaluation. Deliberately holds nothing that leads back to the person: no
    registration, no time (Registration.evaluated says only *that* someone answered)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    seminar_id: Mapped[int] = mapped_column(ForeignKey("seminar.id", ondelete="CASCADE"), index=True)
    overall: Mapped[int]  # 1-10
    usefulness: Mapped[int]  # 1-5
    comment: Mapped[str] = mapped_column(Text, default="")
