"""An organiser's upload of the participant list Zoom or Teams exports (CSV).

Accepted: UTF-8 (with or without BOM) or UTF-16 (Teams saves its attendance list so), separated
by `,`, `;` or a tab, English or Dutch column names, and the sections Teams puts around its table.
Rows are matched by e-mail address only; rows that match nobody are listed, never guessed. The
file is checked whole before anything is stored: a problem names its row and nothing is imported.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l

from ..database import write_transaction
from ..models import Seminar
from ..timeutil import local_zone
from .matching import Matcher, normalize, record_attendance

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_SESSION_SECONDS = 24 * 3600

# Column names as the platforms write them (lower case, spaces collapsed), English and Dutch.
EMAIL = {"email", "e-mail", "user email", "e-mailadres", "emailadres", "e-mail address", "email address",
         "e-mail gebruiker", "e-mailadres gebruiker", "gebruikers-e-mail", "e-mail van gebruiker",
         "participant email", "e-mail deelnemer"}
JOIN = {"join time", "join", "joined", "tijd van deelname", "deelnametijd", "tijdstip van deelname",
        "deelnemen", "deelgenomen", "first join", "eerste keer deelgenomen", "eerste deelname"}
LEAVE = {"leave time", "leave", "left", "tijd van vertrek", "vertrektijd", "tijdstip van vertrek",
         "verlaten", "vertrokken", "last leave", "laatste keer verlaten", "laatste vertrek"}
DURATION = {"duration (minutes)", "duration (minute)", "duration", "duur (minuten)", "duur",
            "in-meeting duration", "duur in vergadering", "duur van vergadering", "attendance duration",
            "tijd in vergadering", "minutes", "minuten"}
NAME = {"name (original name)", "name", "full name", "naam (oorspronkelijke naam)", "naam",
        "volledige naam", "participant", "deelnemer", "display name", "weergavenaam"}

TIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M",
                "%m/%d/%y, %I:%M:%S %p", "%m/%d/%y %I:%M:%S %p", "%m/%d/%y, %H:%M:%S",
                "%d/%m/%Y %H:%M:%S", "%d/%m/%Y, %H:%M:%S", "%d/%m/%y, %H:%M:%S", "%d/%m/%Y %H:%M",
                "%d-%m-%Y %H:%M:%S", "%d-%m-%Y, %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%y %H:%M:%S",
                "%d-%m-%y, %H:%M:%S"]
DURATION_PART = re.compile(r"(\d+)\s*(h|hr|hrs|hours?|u|uur|m|min|mins|minutes?|minuten|s|sec|secs|seconds?|seconden)\b")


class ImportProblem(ValueError):
    """The file cannot be imported; the message names the row where that is known."""

    def __init__(self, message, row: int | None = None):
        super().__init__(str(message))
        self.message, self.row = message, row


@dataclass
class ImportResult:
    rows: int = 0
    matched: int = 0  # rows that matched a registration
    people: int = 0  # different registrations matched
    stored: int = 0  # join/leave moments new to us
    unknown: list[tuple[int, str]] = field(default_factory=list)  # (row, address)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (row, same as row)


@dataclass
class _Row:
    number: int
    email: str
    label: str
    start: datetime | None
    end: datetime | None
    seconds: int | None


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportProblem(_l("The file says it is UTF-16 text but is not readable as such.")) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[:exc.start].count(b"\n") + 1
        raise ImportProblem(_l("Row %(row)d is not UTF-8 text. Save the file as \"CSV UTF-8\" and "
                               "upload it again.", row=row), row) from None


def _header(cell: str) -> str:
    """One header cell as compared with the names above: lower case, spaces collapsed."""
    return re.sub(r"\s+", " ", cell.strip().lstrip("\ufeff").strip('"').lower())


def _columns(cells: list[str]) -> dict[str, int] | None:
    names = [_header(c) for c in cells]
    found = {}
    for key, aliases in (("email", EMAIL), ("join", JOIN), ("leave", LEAVE), ("duration", DURATION),
                         ("name", NAME)):
        for index, name in enumerate(names):
            if name in aliases and key not in found:
                found[key] = index
    if "email" in found and ("duration" in found or ("join" in found and "leave" in found)):
        found["_width"] = len(names)
        return found
    return None


def _tables(text: str) -> list[tuple[dict[str, int], list[tuple[int, list[str]]]]]:
    """Every table in the file: a header row we recognise and the rows under it up to a blank line."""
    lines = text.splitlines()
    sample = "\n".join(lines[:50])
    counts = {d: sample.count(d) for d in (";", ",", "\t")}
    delimiter = max(counts, key=counts.get)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    tables, current = [], None
    try:
        for number, cells in enumerate(reader, start=1):
            if number > MAX_ROWS:
                raise ImportProblem(_l("The file has more than %(max)d rows.", max=MAX_ROWS), number)
            if not any(c.strip() for c in cells):
                current = None
                continue
            columns = _columns(cells)
            if columns is not None:
                current = (columns, [])
                tables.append(current)
            elif current is not None:
                current[1].append((number, cells))
    except csv.Error as exc:
        raise ImportProblem(_l("Row %(row)d cannot be read as CSV (%(error)s).", row=reader.line_num,
                               error=str(exc)), reader.line_num) from None
    return tables


def _parse_seconds(value: str) -> int | None:
    value = value.strip().lower()
    if not value:
        return None
    if re.fullmatch(r"\d+", value):
        return int(value) * 60  # Zoom: whole minutes
    if re.fullmatch(r"\d+[.,]\d+", value):
        return int(float(value.replace(",", ".")) * 60)
    if re.fullmatch(r"\d{1,2}:\d{2}:\d{2}", value):
        h, m, s = map(int, value.split(":"))
        return h * 3600 + m * 60 + s
    parts = DURATION_PART.findall(value)
    if not parts:
        raise ValueError(value)
    seconds = 0
    for number, unit in parts:
        seconds += int(number) * (3600 if unit[0] in "hu" else 60 if unit[0] == "m" else 1)
    return seconds


def _time_format(values: list[str], seminar: Seminar) -> str | None:
    """The one format under which every time in the file lies within a day of the seminar (this
    tells 11/30 from 30/11 without guessing per row)."""
    zone = local_zone()
    lo, hi = seminar.start_at - timedelta(days=1), seminar.end_at + timedelta(days=1)
    for fmt in TIME_FORMATS:
        try:
            moments = [datetime.strptime(v.strip(), fmt).replace(tzinfo=zone) for v in values]
        except ValueError:
            continue
        if all(lo <= m <= hi for m in moments):
            return fmt
    return None


def read_rows(data: bytes, seminar: Seminar) -> list[_Row]:
    if len(data) > MAX_BYTES:
        raise ImportProblem(_l("The file is larger than %(mb)d MB; a participant list is far smaller. "
                               "Is it the right file?", mb=MAX_BYTES // (1024 * 1024)))
    tables = _tables(_decode(data))
    if not tables:
        raise ImportProblem(_l("No participant table found: the file needs a column with the e-mail "
                               "address and either join and leave times or a duration (e.g. \"User "
                               "Email\", \"Join Time\", \"Leave Time\", \"Duration (Minutes)\")."))
    # Teams puts a table per person (first join, last leave) before one per session: the last
    # table has the finest detail.
    columns, raw = tables[-1]
    header_width = columns.pop("_width")
    width = max(columns.values()) + 1  # trailing cells we do not read may be missing
    cell = lambda cells, key: cells[columns[key]].strip() if key in columns and columns[key] < len(cells) else ""  # noqa: E731
    times = [cell(c, k) for _, c in raw for k in ("join", "leave") if cell(c, k)]
    fmt = _time_format(times, seminar) if times else None
    if times and fmt is None:
        raise ImportProblem(_l("The join and leave times are not in a format we know, or not on the "
                               "day of the seminar."))
    zone, rows = local_zone(), []
    for number, cells in raw:
        if len(cells) < width:
            raise ImportProblem(_l("Row %(row)d has %(found)d columns; the header has %(expected)d.",
                                   row=number, found=len(cells), expected=header_width), number)
        email = normalize(cell(cells, "email"))
        if not email or "@" not in email:
            raise ImportProblem(_l("Row %(row)d has no e-mail address.", row=number), number)
        try:
            start = datetime.strptime(cell(cells, "join"), fmt).replace(tzinfo=zone) if fmt and cell(cells, "join") else None
            end = datetime.strptime(cell(cells, "leave"), fmt).replace(tzinfo=zone) if fmt and cell(cells, "leave") else None
            seconds = _parse_seconds(cell(cells, "duration")) if "duration" in columns else None
        except (ValueError, OverflowError):  # "1.5e400" minutes overflows a float
            raise ImportProblem(_l("Row %(row)d has a time or duration we cannot read.", row=number), number) from None
        if seconds is not None and seconds > MAX_SESSION_SECONDS:
            # A join time that far out would overflow datetime; no session lasts a day anyway.
            raise ImportProblem(_l("Row %(row)d has a duration of more than 24 hours.", row=number), number)
        if start is not None and end is not None and end < start:
            raise ImportProblem(_l("Row %(row)d leaves before it joins.", row=number), number)
        if (start is None or end is None) and seconds is None:
            raise ImportProblem(_l("Row %(row)d has neither join and leave times nor a duration.",
                                   row=number), number)
        rows.append(_Row(number, email, cell(cells, "name") or email, start, end, seconds))
    return rows


def import_participants(seminar: Seminar, data: bytes) -> ImportResult:
    """Check the whole file, then store every matched row's session in one transaction."""
    rows = read_rows(data, seminar)
    matcher = Matcher(seminar.id)
    result = ImportResult(rows=len(rows))
    seen: dict[tuple, int] = {}
    stacked: dict[int, datetime] = {}  # duration-only rows of a person follow each other
    plan = []
    for row in rows:
        key = (row.email, row.start, row.end, row.seconds)
        if key in seen:
            result.duplicates.append((row.number, seen[key]))
            continue
        seen[key] = row.number
        reg_id = matcher.match(email=row.email)
        if reg_id is None:
            result.unknown.append((row.number, row.email))
            continue
        start, end = row.start, row.end
        if start is None or end is None:
            start = start or stacked.get(reg_id, seminar.start_at)
            end = start + timedelta(seconds=row.seconds)
            stacked[reg_id] = end
        result.matched += 1
        # A stable id per session: importing the same file again stores nothing new.
        participant = "csv:" + hashlib.sha256(f"{reg_id}|{start.isoformat()}|{end.isoformat()}".encode()).hexdigest()[:24]
        plan.append((reg_id, start, end, participant))
    result.people = len({reg_id for reg_id, *_ in plan})
    with write_transaction():
        for reg_id, start, end, participant in plan:
            result.stored += record_attendance(seminar.id, reg_id, "joined", start, participant, "csv")
            result.stored += record_attendance(seminar.id, reg_id, "left", end, participant, "csv")
    return result
