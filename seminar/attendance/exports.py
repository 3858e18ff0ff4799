"""The accreditation export: who attended, with their register numbers, for the register's upload.

Columns (Dutch Excel: UTF-8 BOM, `;`): Registratienummer; Naam; E-mail; Organisatie; Datum
(YYYY-MM-DD); Cursusnummer; Punten; Minuten aanwezig. One row per person who attended (at or
above the seminar's minimum, or so corrected); documented in docs/INTERFACE.md.
"""
from __future__ import annotations

from ..exports import excel_csv, safe_cell
from ..models import Seminar
from ..timeutil import to_local
from .service import summary

HEADER = ["Registratienummer", "Naam", "E-mail", "Organisatie", "Datum", "Cursusnummer", "Punten",
          "Minuten aanwezig"]


def accreditation_rows(seminar: Seminar) -> list[list[str]]:
    day = to_local(seminar.start_at).strftime("%Y-%m-%d")
    return [[safe_cell(row.registration.register_number), safe_cell(row.registration.name),
             safe_cell(row.registration.email), safe_cell(row.registration.organisation), day,
             safe_cell(seminar.course_number or ""), safe_cell(seminar.points or ""), str(row.minutes)]
            for row in summary(seminar).rows if row.attended]


def accreditation_csv(seminar: Seminar) -> bytes:
    return excel_csv(HEADER, accreditation_rows(seminar))
