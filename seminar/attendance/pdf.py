"""The certificate of attendance as an A4 PDF (fpdf2, DejaVu Sans embedded; see certificates.py).

Apart from certificates.py because fpdf2 with fontTools and Pillow costs a process some 15 MB:
only a process that makes a PDF imports this module (the worker's certificate mail, the download)."""
from __future__ import annotations

import logging
from pathlib import Path

from babel.dates import format_date
from flask import current_app
from flask_babel import force_locale, gettext as _, ngettext
from fpdf import FPDF

from .certificates import verification_url
from .models import Certificate

FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
# fontTools reports every font it subsets at INFO: one line per certificate is noise in the log.
logging.getLogger("fontTools").setLevel(logging.WARNING)
# fpdf2 names the glyphs of a person's name its font lacks at WARNING: nothing personal in logs.
logging.getLogger("fpdf").setLevel(logging.ERROR)
log = logging.getLogger("seminar.attendance")


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
        # Shaping (HarfBuzz, through uharfbuzz): Arabic letters joined as they are written, and
        # right-to-left names in their own order; without it they come out as isolated letters.
        self.set_text_shaping(True)
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
