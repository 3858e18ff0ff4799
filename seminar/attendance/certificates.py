"""Certificates of attendance: the record, its verification code, and the A4 PDF.

The PDF is made with fpdf2 (pure Python, from PyPI, no system libraries) in DejaVu Sans, which is
embedded (subset) so every reader shows the same letters, Dutch ĳ, ë, é included. The font files
are committed under seminar/attendance/fonts/ with their licence (Bitstream Vera, free to
redistribute). The PDF is made again from the record whenever it is needed (mail, download), so
only the record is kept.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from babel.dates import format_date
from flask import current_app
from flask_babel import force_locale, gettext as _, ngettext
from fpdf import FPDF
from sqlalchemy import select

from ..extensions import db
from ..models import Registration, Seminar
from ..timeutil import to_local, utcnow
from ..tokens import external_url
from .models import Certificate

FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
# fontTools reports every font it subsets at INFO: one line per certificate is noise in the log.
logging.getLogger("fontTools").setLevel(logging.WARNING)
# fpdf2 names the glyphs of a person's name its font lacks at WARNING: nothing personal in logs.
logging.getLogger("fpdf").setLevel(logging.ERROR)
log = logging.getLogger("seminar.attendance")


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

def _hours_and_minutes(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    hours_text = ngettext("%(num)d hour", "%(num)d hours", hours)
    minutes_text = ngettext("%(num)d minute", "%(num)d minutes", rest)
    if hours and rest:
        return _("%(hours)s and %(minutes)s", hours=hours_text, minutes=minutes_text)
    return hours_text if hours else minutes_text


class _Certificate(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(False)
        self.set_margins(25, 25, 25)

    def line_of(self, text: str, size: float, style: str = "", gap: float = 3, max_lines: int = 3,
                smallest: float = 10) -> None:
        """Centred text that shrinks to fit, then wraps, and never takes more than max_lines."""
        self.set_font(FONT, style, size)
        width = self.epw
        while size > smallest and self.get_string_width(text) > width:
            size -= 1
            self.set_font(FONT, style, size)
        lines = self.multi_cell(width, size * 0.5, text, align="C", dry_run=True, output="LINES")
        if len(lines) > max_lines:
            text = "".join(lines[:max_lines]).rstrip()[:-1] + "…"
        self.multi_cell(width, size * 0.5, text, align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(gap)


def render_pdf(certificate: Certificate) -> bytes:
    """The certificate as an A4 PDF, in the language the person signed up in."""
    config = current_app.config
    seminar = certificate.seminar
    lang = certificate.language if certificate.language in config["LANGUAGES"] else "nl"
    with force_locale(lang):
        pdf = _Certificate()
        title = _("Certificate of attendance")
        pdf.set_title(f"{title}: {certificate.seminar_title}")
        pdf.set_author(config["ORGANISATION_NAME"])
        pdf.set_lang(lang)
        pdf.add_page()
        logo = config.get("CERTIFICATE_LOGO")
        pdf.set_y(40)
        if logo and Path(logo).is_file():
            try:
                pdf.image(logo, x=(210 - 40) / 2, y=18, w=40)
                pdf.set_y(50)
            except Exception as exc:  # noqa: BLE001 - a broken logo must not stop every certificate
                log.warning("CERTIFICATE_LOGO could not be used (%s); certificates go without it",
                            exc.__class__.__name__)
        pdf.line_of(title, 28, "B", gap=10, max_lines=1)
        pdf.line_of(_("This is to certify that"), 12, gap=4)
        pdf.line_of(certificate.name, 22, "B", gap=2, max_lines=2)
        if certificate.organisation:
            pdf.line_of(certificate.organisation, 13, gap=2, max_lines=2)
        if certificate.register_number:
            pdf.line_of(_("Register number: %(number)s", number=certificate.register_number), 11, gap=2)
        pdf.ln(6)
        pdf.line_of(_("attended the online seminar"), 12, gap=4)
        pdf.line_of(certificate.seminar_title, 17, "B", gap=4)
        day = format_date(certificate.seminar_date, format="long", locale=lang) if certificate.seminar_date else ""
        pdf.line_of(day, 12, gap=2)
        pdf.line_of(_("Duration of the programme: %(duration)s",
                      duration=_hours_and_minutes(seminar.duration_minutes)), 12, gap=2)
        if seminar.speakers:
            pdf.line_of(_("Speakers: %(speakers)s", speakers=seminar.speakers), 11, gap=2)
        if seminar.is_accredited:
            pdf.ln(4)
            pdf.line_of(_("Accredited by %(register)s, course number %(course)s, %(points)s points",
                          register=seminar.register_name, course=seminar.course_number,
                          points=seminar.points or "-"), 11, "B", gap=2)
        pdf.ln(10)
        pdf.line_of(_("Organised by %(organisation)s", organisation=config["ORGANISATION_NAME"]), 11, gap=2)
        if config.get("CERTIFICATE_SIGNATORY"):
            pdf.ln(8)
            pdf.line_of(config["CERTIFICATE_SIGNATORY"], 12, "B", gap=1)
            if config.get("CERTIFICATE_SIGNATORY_ROLE"):
                pdf.line_of(config["CERTIFICATE_SIGNATORY_ROLE"], 10, gap=1)
        pdf.set_y(-45)
        pdf.line_of(_("Verification code: %(code)s", code=certificate.code), 10, gap=1)
        pdf.line_of(_("Check this certificate at %(url)s", url=verification_url(certificate)), 9, gap=1)
        return bytes(pdf.output())


def filename(certificate: Certificate) -> str:
    with force_locale(certificate.language or "nl"):
        return _("certificate") + f"-{certificate.seminar_date or 'seminar'}.pdf"
