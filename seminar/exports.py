"""Attendee lists as CSV (Dutch Excel: UTF-8 BOM, `;`) and XLSX, for the portal and the CLI."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select

from .extensions import db
from .models import Registration, RegistrationStatus, Seminar
from .templating import status_label
from .textcheck import neutralise
from .timeutil import to_local

HEADER = ["Naam", "E-mail", "Organisatie", "Type locatie", "Status", "Aangemeld", "Bevestigd", "Vraag"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """Neutralise spreadsheet formulas (CSV/Excel injection): a leading ' makes it plain text.
    Control characters and bidi overrides (rows stored before the form refused them) become
    U+FFFD: openpyxl refuses them, and in a terminal they are escape sequences."""
    text = neutralise(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def rows(seminar: Seminar) -> list[list[str]]:
    regs = db.session.scalars(
        select(Registration)
        .where(Registration.seminar_id == seminar.id, Registration.status != RegistrationStatus.PURGED)
        .order_by(Registration.status, Registration.name)
    )
    fmt = "%Y-%m-%d %H:%M"
    return [
        [safe_cell(r.name), safe_cell(r.email), safe_cell(r.organisation), r.location_type,
         status_label(r.status), to_local(r.created_at).strftime(fmt),
         to_local(r.confirmed_at).strftime(fmt) if r.confirmed_at else "", safe_cell(r.question)]
        for r in regs
    ]


def excel_csv(header: list[str], body: list[list]) -> bytes:
    """A CSV that Dutch Excel opens as it is: UTF-8 with BOM, `;` between cells."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(body)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_csv(seminar: Seminar) -> bytes:
    return excel_csv(HEADER, rows(seminar))


def as_xlsx(seminar: Seminar) -> bytes:
    from openpyxl import Workbook  # only here: it weighs ~10 MB in every process otherwise

    book = Workbook()
    sheet = book.active
    sheet.title = "Deelnemers"
    sheet.append(HEADER)
    for row in rows(seminar):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
