"""Uploading a platform's participant export: Zoom's and Teams' real layouts (built here from the
column names they write, English and Dutch), `,`/`;`/tab, with and without BOM, UTF-16; and bad
files: a clear message naming the row, nothing half-imported."""
from __future__ import annotations

from datetime import timedelta

import pytest

from seminar.attendance.imports import ImportProblem, import_participants
from seminar.attendance.service import summary
from seminar.extensions import db
from seminar.models import AttendanceEvent, Registration, Seminar
from seminar.timeutil import to_local

from .helpers import future
from .video_kit import confirm_many, fresh


@pytest.fixture
def seminar(app, make_seminar):
    s = make_seminar(start_at=future(days=3), duration_minutes=90)
    confirm_many(s, 3)
    return fresh(Seminar, s.id)


def people() -> list[Registration]:
    return list(db.session.scalars(db.select(Registration).order_by(Registration.id)))


def at(seminar, minutes: int, fmt: str) -> str:
    return to_local(seminar.start_at + timedelta(minutes=minutes)).strftime(fmt)


def zoom_en(seminar) -> bytes:
    """Zoom web portal, Reports > Usage > Participants, "Export with meeting data" on, US dates."""
    a, b, c = people()
    f = "%m/%d/%Y %I:%M:%S %p"
    lines = [
        "Meeting ID,Topic,Start Time,End Time,User Email,Duration (Minutes),Participants",
        f"812 3456 7890,{seminar.title},{at(seminar, -5, f)},{at(seminar, 95, f)},host@bmk.example,100,4",
        "",
        "Name (Original Name),User Email,Join Time,Leave Time,Duration (Minutes),Guest,Recording Consent,In Waiting Room",
        f"{a.name},{a.email},{at(seminar, 0, f)},{at(seminar, 30, f)},30,No,,No",
        f"{a.name},{a.email},{at(seminar, 32, f)},{at(seminar, 90, f)},58,No,,No",
        f"{b.name},{b.email.upper()},{at(seminar, 10, f)},{at(seminar, 40, f)},30,No,,No",
        f"Iemand Anders,iemand@elders.example,{at(seminar, 0, f)},{at(seminar, 90, f)},90,Yes,,No",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def zoom_nl(seminar) -> bytes:
    """The same export from a Dutch Zoom account opened and saved by Dutch Excel: `;`, BOM."""
    a, b, c = people()
    f = "%d-%m-%Y %H:%M:%S"
    lines = [
        "Naam (oorspronkelijke naam);E-mailadres;Tijd van deelname;Tijd van vertrek;Duur (minuten);Gast",
        f"Ëlise van 't Hof;{a.email};{at(seminar, 0, f)};{at(seminar, 30, f)};30;Nee",
        f"Ëlise van 't Hof;{a.email};{at(seminar, 32, f)};{at(seminar, 90, f)};58;Nee",
        f"{c.name};{c.email};{at(seminar, 5, f)};{at(seminar, 85, f)};80;Nee",
    ]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def teams_en(seminar) -> bytes:
    """Teams' "Download attendance list": UTF-16 with BOM, tab separated, three sections."""
    a, b, c = people()
    f = "%m/%d/%y, %I:%M:%S %p"
    lines = [
        "1. Summary", f"Meeting title\t{seminar.title}", "Attended participants\t3",
        f"Start time\t{at(seminar, -2, f)}", f"End time\t{at(seminar, 91, f)}", "Meeting duration\t1h 33m", "",
        "2. Participants",
        "Name\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\tParticipant ID (UPN)\tRole",
        f"{a.name}\t{at(seminar, 0, f)}\t{at(seminar, 90, f)}\t1h 28m\t{a.email}\t{a.email}\tAttendee",
        f"{c.name}\t{at(seminar, 20, f)}\t{at(seminar, 90, f)}\t1h 10m\t{c.email}\t{c.email}\tAttendee",
        "",
        "3. In-Meeting Activities",
        "Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole",
        f"{a.name}\t{at(seminar, 0, f)}\t{at(seminar, 30, f)}\t30m 0s\t{a.email}\tAttendee",
        f"{a.name}\t{at(seminar, 32, f)}\t{at(seminar, 90, f)}\t58m 0s\t{a.email}\tAttendee",
        f"{c.name}\t{at(seminar, 20, f)}\t{at(seminar, 90, f)}\t1h 10m 0s\t{c.email}\tAttendee",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-16")


def teams_nl_durations(seminar) -> bytes:
    """A Dutch Teams list reduced to name, e-mail and duration (as organisers often trim it)."""
    a, b, c = people()
    lines = ["Naam,E-mail,Duur in vergadering", f"{b.name},{b.email},1 u 15 m 0 s", f"{c.name},{c.email},40 m"]
    return ("\n".join(lines)).encode("utf-8")


def result_minutes(seminar) -> dict[str, tuple[int, bool, str]]:
    db.session.rollback()
    return {row.registration.email: (row.minutes, row.attended, row.source)
            for row in summary(fresh(Seminar, seminar.id)).rows}


def test_zoom_english_export_with_meeting_data(seminar):
    a, b, c = people()
    result = import_participants(seminar, zoom_en(seminar))
    assert (result.rows, result.matched, result.people) == (4, 3, 2)
    assert result.unknown == [(8, "iemand@elders.example")]  # listed, not guessed
    assert result_minutes(seminar) == {a.email: (88, True, "csv"), b.email: (30, False, "csv"),
                                       c.email: (0, False, "-")}
    # The same file again stores nothing new.
    assert import_participants(fresh(Seminar, seminar.id), zoom_en(seminar)).stored == 0


def test_zoom_dutch_export_with_semicolons_and_bom(seminar):
    a, b, c = people()
    import_participants(seminar, zoom_nl(seminar))
    found = result_minutes(seminar)
    assert found[a.email][:2] == (88, True) and found[c.email][:2] == (80, True)


def test_teams_utf16_attendance_list_uses_the_per_session_table(seminar):
    a, b, c = people()
    result = import_participants(seminar, teams_en(seminar))
    assert result.matched == 3 and result.unknown == []
    found = result_minutes(seminar)
    assert found[a.email][:2] == (88, True) and found[c.email][:2] == (70, True)


def test_durations_alone_are_summed(seminar):
    a, b, c = people()
    import_participants(seminar, teams_nl_durations(seminar))
    found = result_minutes(seminar)
    assert found[b.email][:2] == (75, True) and found[c.email][:2] == (40, False)


def test_duplicate_rows_count_once_and_are_named(seminar):
    a, *_ = people()
    data = zoom_en(seminar)
    lines = data.decode().splitlines()
    data = "\r\n".join(lines + [lines[4]]).encode()
    result = import_participants(seminar, data)
    assert result.duplicates == [(9, 5)]
    assert result_minutes(seminar)[a.email][0] == 88


@pytest.mark.parametrize("make,said,row", [
    (lambda s: b"Naam,Organisatie\nAnouk,KDV\n", "No participant table", None),
    (lambda s: zoom_en(s).replace(b"\r\nIemand Anders,", b"\r\nIemand\xff Anders,"), "Row 8 is not UTF-8", 8),
    (lambda s: zoom_en(s).replace(b",30,No,,No\r\n", b"\r\n", 1), "Row 5 has 4 columns; the header has 8", 5),
    (lambda s: zoom_en(s).replace(b",58,No", b",lang,No"), "Row 6 has a time or duration", 6),
    (lambda s: b"User Email,Duration (Minutes)\n,30\n", "Row 2 has no e-mail address", 2),
    (lambda s: b"User Email,Duration (Minutes)\nanouk@x.example,99999999\n", "Row 2 has a duration of more than 24 hours", 2),
    (lambda s: b"User Email,Duration (Minutes)\nanouk@x.example," + b"9" * 400 + b".5\n", "Row 2 has a time or duration", 2),
    (lambda s: b"x" * (20 * 1024 * 1024), "larger than 5 MB", None),
    (lambda s: zoom_en(s).replace(s.start_at.strftime("%Y").encode(), b"2001"), "not on the day", None),
])
def test_bad_files_are_refused_whole_with_the_row_named(app, seminar, make, said, row):
    with app.test_request_context("/?lang=en"):
        with pytest.raises(ImportProblem) as caught:
            import_participants(seminar, make(seminar))
        assert said in str(caught.value.message)
    assert caught.value.row == row
    assert db.session.scalar(db.select(db.func.count(AttendanceEvent.id))) == 0


def test_the_command_imports_a_file(runner, seminar, tmp_path):
    a, b, c = people()
    path = tmp_path / "zoom.csv"
    path.write_bytes(zoom_en(seminar))
    result = runner.invoke(args=["seminar", "attendance", str(seminar.id), "--import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{a.email}  88  attended  csv" in result.stdout.splitlines()
    assert "row 8: iemand@elders.example matches no confirmed registration" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Naam;Organisatie\n")
    result = runner.invoke(args=["seminar", "attendance", str(seminar.id), "--import", str(bad)])
    assert result.exit_code == 1 and "Geen deelnemerstabel" in result.output
