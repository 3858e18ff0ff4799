"""Certificates of attendance: the record, its verification code, and the A4 PDF.

The PDF is made with fpdf2 (pure Python, from PyPI, no system libraries) in DejaVu Sans, which is
embedded (subset) so every reader shows the same letters, Dutch ĳ, ë, é included. The font files
are committed under seminar/attendance/fonts/ with their licence (Bitstream Vera, free to
redistribute). The PDF is made again from the record whenever it is needed (mail, download), so
only the record is kept.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Registration, Seminar
from ..timeutil import to_local, utcnow
from ..tokens import external_url
from .models import Certificate


def verification_url(certificate: Certificate) -> str:
    return external_url("after.verify_certificate", code=certificate.code)


def issue(registration: Registration, minutes: int) -> Certificate:
    """The registration's certificate, made once (call in a transaction); later calls return it."""
    existing = db.session.scalar(select(Certificate).where(Certificate.registration_id == registration.id))
    if existing is not None:
        return existing
    seminar = registration.seminar
    certificate = Certificate(
        seminar_id=seminar.id, registration_id=registration.id, name=registration.name,
        organisation=registration.organisation, register_number=registration.register_number or "",
        seminar_title=seminar.title, seminar_date=to_local(seminar.start_at).date(),
        minutes=minutes, language=registration.language or "nl")
    db.session.add(certificate)
    db.session.flush()
    return certificate


def find(code: str) -> Certificate | None:
    """A certificate by its code, revoked ones included (the caller decides what to show)."""
    if not code or len(code) > 40:
        return None
    return db.session.scalar(select(Certificate).where(Certificate.code == code))


def retention_end(certificate: Certificate) -> datetime:
    seminar = certificate.seminar
    return seminar.end_at + timedelta(days=current_app.config["CERTIFICATE_RETENTION_DAYS"])


def _past_retention(now: datetime) -> list[Certificate]:
    days = timedelta(days=current_app.config["CERTIFICATE_RETENTION_DAYS"])
    rows = db.session.execute(
        select(Certificate, Seminar.start_at, Seminar.duration_minutes)
        .join(Seminar, Seminar.id == Certificate.seminar_id).where(Certificate.expired_at.is_(None))).all()
    return [certificate for certificate, start_at, minutes in rows
            if start_at + timedelta(minutes=minutes) + days <= now]


def expiring(now: datetime | None = None) -> int:
    """How many certificates are past CERTIFICATE_RETENTION_DAYS and still hold their details."""
    return len(_past_retention(now or utcnow()))


def _empty(certificate: Certificate, now: datetime) -> None:
    certificate.name = certificate.organisation = certificate.register_number = ""
    certificate.seminar_title, certificate.seminar_date, certificate.minutes = "", None, 0
    certificate.registration_id = None
    certificate.expired_at = now


def expire_due(now: datetime | None = None) -> int:
    """Certificates past CERTIFICATE_RETENTION_DAYS lose everything but their code (call in a
    transaction): the verification page then says the record has expired. Returns how many."""
    now = now or utcnow()
    due = _past_retention(now)
    for certificate in due:
        _empty(certificate, now)
    return len(due)


def expire_for(registration_ids: list[int]) -> int:
    """The certificates of these registrations emptied now (erasure on request; in a transaction)."""
    now = utcnow()
    found = db.session.scalars(select(Certificate).where(
        Certificate.registration_id.in_(registration_ids), Certificate.expired_at.is_(None))).all()
    for certificate in found:
        _empty(certificate, now)
    return len(found)


# ---------------------------------------------------------------- the PDF

def filename(certificate: Certificate) -> str:
    with force_locale(certificate.language or "nl"):
        return _("certificate") + f"-{certificate.seminar_date or 'seminar'}.pdf"
