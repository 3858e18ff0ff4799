"""Organisers run seminars through the portal's forms; attendee lists, exports, the chart and
waitlist moves match the database."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import openpyxl
import pytest

from seminar.exports import HEADER
from seminar.extensions import db
from seminar.accounts import set_password
from seminar.models import Registration, Seminar, User
from seminar.registration.service import cancel
from seminar.templating import status_label
from seminar.timeutil import to_local

from .helpers import future
from .helpers import jobs
from .portal_helpers import PASSWORD, Staff, attendee, make_user


@pytest.fixture
def organiser(client):
    make_user("organisator@bmk.example", role="organiser")
    return Staff(client, "organisator@bmk.example").logged_in()


def local_input(dt) -> str:
    return to_local(dt).strftime("%Y-%m-%dT%H:%M")


def seminar_form(**changes) -> dict:
    start = future(days=40, hour=9)
    data = dict(title="De Meldcode in de praktijk", start=local_input(start), duration_minutes="90",
                capacity="2", speakers="Een adviseur van Veilig Thuis", description="Over de vijf stappen.",
                hosts="host@bmk.example", reminder_hours="24,1", digest_hours="24, 1")
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def only_seminar() -> Seminar:
    db.session.expire_all()
    [seminar] = db.session.scalars(db.select(Seminar)).all()
    return seminar


# ---------------------------------------------------------------- running a seminar

def test_organiser_creates_publishes_edits_reschedules_and_cancels(client, organiser):
    # Create as a draft: nothing goes to the platform yet.
    response = organiser.submit("/manage/seminars/new", seminar_form())
    assert response.status_code == 303, response.get_data(as_text=True)
    seminar = only_seminar()
    assert (seminar.state, seminar.capacity, seminar.digest_hours) == ("draft", 2, "24,1")
    assert [h.email for h in seminar.hosts] == ["host@bmk.example"]
    assert jobs("video.create_meeting") == [] and jobs("mail.host_digest") == []

    # Publish: the meeting is created by the worker, and the host lists are planned.
    page = f"/manage/seminars/{seminar.id}"
    assert organiser.press(page, f"{page}/publish").status_code == 303
    seminar = only_seminar()
    assert seminar.state == "published"
    assert len(jobs("video.create_meeting")) == 1
    digests = jobs("mail.host_digest")
    assert sorted(j.due_at for j in digests) == [seminar.start_at - timedelta(hours=24),
                                                seminar.start_at - timedelta(hours=1)]

    reg = attendee(seminar, "Anouk de Vries", "anouk@kdv.example")
    assert reg.status == "confirmed"

    # Reschedule and change the title through the edit form.
    new_start = future(days=47, hour=13)
    edit = organiser.text(f"{page}/edit")
    assert 'value="De Meldcode in de praktijk"' in edit and "host@bmk.example" in edit
    response = organiser.submit(f"{page}/edit", seminar_form(
        title="De Meldcode: van signaal tot besluit", start=local_input(new_start), capacity="3",
        hosts="host@bmk.example\ntweede@bmk.example"))
    assert response.status_code == 303, response.get_data(as_text=True)
    seminar = only_seminar()
    assert (seminar.title, seminar.start_at, seminar.capacity) == (
        "De Meldcode: van signaal tot besluit", new_start, 3)
    assert [j.registration_id for j in jobs("mail.seminar_changed")] == [reg.id]
    assert jobs("mail.seminar_changed")[0].payload["method"] == "REQUEST"
    assert len(jobs("video.update_meeting")) == 1
    pending = jobs("mail.host_digest", "pending")
    assert len(pending) == 4  # two hosts, two lists each, at the new time
    assert {j.due_at for j in pending} == {new_start - timedelta(hours=24), new_start - timedelta(hours=1)}
    assert {j.due_at for j in jobs("mail.reminder", "pending")} == {
        new_start - timedelta(hours=24), new_start - timedelta(hours=1)}

    # Cancel: asked first, then done; the attendee gets a CANCEL, the platform a delete.
    assert "Ja, annuleer dit seminar" in organiser.text(f"{page}/cancel")
    assert organiser.press(f"{page}/cancel", f"{page}/cancel").status_code == 303
    seminar = only_seminar()
    assert seminar.state == "cancelled"
    [cancelled] = jobs("mail.seminar_cancelled")
    assert (cancelled.registration_id, cancelled.payload["method"]) == (reg.id, "CANCEL")
    assert len(jobs("video.delete_meeting")) == 1
    assert jobs("mail.host_digest", "pending") == [] and jobs("mail.reminder", "pending") == []
    # A cancelled seminar offers no edit any more.
    response = organiser.get(f"{page}/edit")
    assert response.status_code == 303


def test_create_with_publish_plans_digests_at_once(client, organiser):
    response = organiser.submit("/manage/seminars/new", seminar_form(publish="y", digest_hours="48,2"))
    assert response.status_code == 303
    seminar = only_seminar()
    assert seminar.state == "published"
    assert sorted(j.payload["hours"] for j in jobs("mail.host_digest")) == [2, 48]
    assert [j.payload["final"] for j in sorted(jobs("mail.host_digest"), key=lambda j: j.payload["hours"])] == [True, False]


@pytest.mark.parametrize("changes, message", [
    ({"title": ""}, "Vul een titel in"),
    ({"start": "2020-01-01T10:00"}, "De start moet in de toekomst liggen"),
    ({"start": "morgen"}, "Vul datum en tijd in"),
    ({"capacity": "0"}, "Tussen 1 en 100000"),
    ({"digest_hours": "24,een"}, "Gebruik hele uren"),
    ({"hosts": "geen-adres"}, "Dit is geen geldig e-mailadres: geen-adres"),
    ({"title": "<script>"}, "Gebruik alleen letters"),
])
def test_seminar_form_refuses_bad_input_in_dutch(client, organiser, changes, message):
    response = organiser.submit("/manage/seminars/new", seminar_form(**changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(db.select(Seminar)).all() == []


def test_capacity_below_the_seats_taken_is_explained(client, organiser, make_seminar):
    seminar = make_seminar(capacity=3)
    for n in range(2):
        attendee(seminar, f"Deelnemer {n}", f"d{n}@kdv.example")
    response = organiser.submit(f"/manage/seminars/{seminar.id}/edit", seminar_form(
        capacity="1", start=local_input(seminar.start_at)))
    assert response.status_code == 400
    assert "2 mensen hebben al een plaats" in response.get_data(as_text=True)
    assert only_seminar().capacity == 3


# ---------------------------------------------------------------- attendee list

@pytest.fixture
def full_seminar(make_seminar):
    """Capacity 2: two seats, one on the waitlist, one unconfirmed, one cancelled; nasty names."""
    seminar = make_seminar(capacity=2, hosts=["host@bmk.example"])
    attendee(seminar, "=HYPERLINK(\"http://evil.example\",\"klik\")", "formule@kdv.example",
             organisation="+31 Opvang", question="@SUM(1+1)")
    attendee(seminar, "Bram Jansen", "bram@bso.example", organisation="-Min Opvang")
    attendee(seminar, "Carla Smit", "carla@gastouder.example", organisation="Gastouderbureau Zon")
    attendee(seminar, "Dirk Bos", "dirk@peuter.example", organisation="Peuterspeelzaal", confirmed=False)
    gone = attendee(seminar, "Eva de Wit", "eva@kdv.example", organisation="Kinderopvang Eva")
    cancel(gone.id)  # Eva was second on the waitlist: she leaves it, nobody moves up
    return seminar


def statuses() -> dict[str, str]:
    db.session.expire_all()
    return {r.name: r.status for r in db.session.scalars(db.select(Registration))}


def test_attendee_list_counts_search_and_sort(client, organiser, full_seminar):
    assert statuses() == {'=HYPERLINK("http://evil.example","klik")': "confirmed", "Bram Jansen": "confirmed",
                          "Carla Smit": "waitlisted", "Dirk Bos": "pending", "Eva de Wit": "cancelled"}
    path = f"/manage/seminars/{full_seminar.id}/attendees"
    page = organiser.text(path)
    counts = re.search(r'<ul class="counts".*?</ul>', page, re.S).group(0)
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", counts)).split() == (
        "2 / 2 met een plaats 1 op de wachtlijst 1 nog niet bevestigd 1 geannuleerd 0 vervallen".split())

    def names(url):
        body = organiser.text(url)
        return re.findall(r"<tr>\s*<td>([^<]+)</td>", body)

    assert names(path) == ["=HYPERLINK(&#34;http://evil.example&#34;,&#34;klik&#34;)", "Bram Jansen",
                           "Carla Smit", "Dirk Bos", "Eva de Wit"]
    assert names(path + "?sort=name&dir=desc")[0] == "Eva de Wit"
    assert names(path + "?q=OPVANG") == ["=HYPERLINK(&#34;http://evil.example&#34;,&#34;klik&#34;)",
                                         "Bram Jansen", "Eva de Wit"]
    assert names(path + "?q=gastouder.example") == ["Carla Smit"]
    assert names(path + "?status=waitlisted") == ["Carla Smit"]
    assert names(path + "?q=50%25") == []  # a LIKE wildcard is searched for literally
    assert "Geen aanmeldingen gevonden" in organiser.text(path + "?q=niemand")
    assert names(path + "?sort=status")[0] == "Eva de Wit"  # cancelled < confirmed < ...
    # An unknown sort key falls back to the name; nothing breaks.
    assert organiser.get(path + "?sort=password_hash&dir=sideways").status_code == 200


def expected_rows(seminar) -> list[list[str]]:
    """The attendee list straight from the database, formulas neutralised."""
    regs = db.session.scalars(db.select(Registration).where(Registration.seminar_id == seminar.id)
                              .order_by(Registration.status, Registration.name)).all()

    def plain(text):
        return "'" + text if text and text[0] in "=+-@" else text

    return [[plain(r.name), r.email, plain(r.organisation), r.location_type, status_label(r.status),
             to_local(r.created_at).strftime("%Y-%m-%d %H:%M"),
             to_local(r.confirmed_at).strftime("%Y-%m-%d %H:%M") if r.confirmed_at else "",
             plain(r.question)] for r in regs]


def test_csv_export_opens_in_dutch_excel_and_matches_the_database(client, organiser, full_seminar):
    response = organiser.get(f"/manage/seminars/{full_seminar.id}/attendees.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == HEADER
    assert rows[1:] == expected_rows(full_seminar)
    names = [row[0] for row in rows[1:]]
    assert "'=HYPERLINK(\"http://evil.example\",\"klik\")" in names
    assert not any(cell and cell[0] in "=+-@" for row in rows[1:] for cell in row)


def test_xlsx_export_matches_the_database_without_formulas(client, organiser, full_seminar):
    response = organiser.get(f"/manage/seminars/{full_seminar.id}/attendees.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    rows = [[cell.value if cell.value is not None else "" for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == HEADER
    assert rows[1:] == expected_rows(full_seminar)
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_cli_exports_the_same_list_as_the_portal(client, organiser, runner, full_seminar, tmp_path):
    portal_csv = organiser.get(f"/manage/seminars/{full_seminar.id}/attendees.csv").get_data()
    result = runner.invoke(args=["seminar", "attendees", str(full_seminar.id)])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == portal_csv
    out = tmp_path / "lijst.xlsx"
    result = runner.invoke(args=["seminar", "attendees", str(full_seminar.id), "--format", "xlsx",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    cli_rows = [[c.value or "" for c in row] for row in openpyxl.load_workbook(out).active.iter_rows()]
    assert cli_rows[1:] == expected_rows(full_seminar)


def test_seminar_without_attendees(client, organiser, make_seminar):
    seminar = make_seminar()
    overview = organiser.text(f"/manage/seminars/{seminar.id}")
    assert "Nog niemand staat op de lijst" in overview and "<svg" not in overview
    assert "Nog niemand heeft zich voor dit seminar aangemeld" in organiser.text(
        f"/manage/seminars/{seminar.id}/attendees")
    raw = organiser.get(f"/manage/seminars/{seminar.id}/attendees.csv").get_data()
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";")) == [HEADER]
    sheet = openpyxl.load_workbook(io.BytesIO(
        organiser.get(f"/manage/seminars/{seminar.id}/attendees.xlsx").get_data())).active
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [HEADER]


# ---------------------------------------------------------------- chart

def test_signups_per_day_chart_with_a_text_alternative(client, organiser, make_seminar):
    seminar = make_seminar(capacity=2)
    regs = [attendee(seminar, f"Deelnemer {n}", f"d{n}@kdv.example") for n in range(3)]
    # Move the first sign-up two days back: three days in the chart, the middle one empty.
    regs[0].confirmed_at -= timedelta(days=2)
    db.session.commit()
    page = organiser.text(f"/manage/seminars/{seminar.id}")
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="chart-title chart-desc"' in svg
    assert "<title id=\"chart-title\">" in svg
    assert "3 mensen op de lijst" in svg
    assert len(re.findall(r'class="bar-confirmed"', svg)) == 2
    assert len(re.findall(r'class="bar-waitlisted"', svg)) == 1
    table = re.search(r"<details>.*?</details>", page, re.S).group(0)
    cells = [re.findall(r'<td class="num">(\d+)</td>', row) for row in re.findall(r"<tr><td>.*?</tr>", table)]
    assert cells == [["1", "0", "1"], ["1", "1", "3"]]


# ---------------------------------------------------------------- waitlist moves

def test_organiser_moves_people_on_and_off_the_waitlist_and_cancels_for_them(client, organiser, full_seminar):
    by_name = {r.name: r for r in db.session.scalars(db.select(Registration))}
    page = f"/manage/seminars/{full_seminar.id}/attendees"
    base = f"/manage/seminars/{full_seminar.id}/registrations"

    # Off the waitlist, out of turn: the full seminar gets one seat more.
    response = organiser.press(page, f"{base}/{by_name['Carla Smit'].id}/seat", back=page + "?q=carla")
    assert response.status_code == 303 and response.headers["Location"].endswith("?q=carla")
    assert statuses()["Carla Smit"] == "confirmed"
    assert only_seminar().capacity == 3
    assert [j.payload["mail"] for j in jobs("video.add_attendee") if j.registration_id == by_name["Carla Smit"].id] == ["promoted"]

    # Cancel on someone's behalf: they are told, the seat is freed.
    organiser.press(page, f"{base}/{by_name['Bram Jansen'].id}/cancel")
    assert statuses()["Bram Jansen"] == "cancelled"
    assert [j.registration_id for j in jobs("mail.registration_cancelled")][-1] == by_name["Bram Jansen"].id

    # Confirm for someone whose mail went astray: the freed seat is theirs.
    organiser.press(page, f"{base}/{by_name['Dirk Bos'].id}/confirm")
    assert statuses()["Dirk Bos"] == "confirmed"

    # One more confirmation on a full seminar goes onto the waitlist.
    late = attendee(full_seminar, "Fleur Kok", "fleur@kdv.example", confirmed=False)
    organiser.press(page, f"{base}/{late.id}/confirm")
    assert statuses()["Fleur Kok"] == "waitlisted"

    # Giving a seat to someone who is not on the waitlist is refused, nothing changes.
    response = organiser.press(page, f"{base}/{by_name['Dirk Bos'].id}/seat")
    assert "niet (meer) op de wachtlijst" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert only_seminar().capacity == 3


def test_organiser_searches_registrations_across_seminars(client, organiser, make_seminar):
    one = make_seminar(title="Eerste seminar")
    two = make_seminar(title="Tweede seminar", start_at=future(days=90))
    attendee(one, "Anouk de Vries", "anouk@kdv.example")
    attendee(two, "Anouk de Vries", "anouk@kdv.example")
    attendee(two, "Bram Jansen", "bram@bso.example")
    page = organiser.text("/manage/registrations?q=anouk")
    assert "Eerste seminar" in page and "Tweede seminar" in page and "Bram" not in page
    assert "2 aanmeldingen" in page


def test_platform_problems_and_failed_jobs_are_shown_to_organisers(client, organiser, make_seminar):
    seminar = make_seminar(hosts=["host@bmk.example"])
    [job] = jobs("video.create_meeting")
    seminar.platform_error = "Zoom: 401 invalid access token"
    job.state, job.last_error = "failed", "platform: 401 invalid access token"
    db.session.commit()
    home = organiser.text("/manage/")
    assert "Zoom: 401 invalid access token" in home
    assert "1 bericht of platformactie is mislukt" in home
    overview = organiser.text(f"/manage/seminars/{seminar.id}")
    assert "Zoom: 401 invalid access token" in overview
    assert "1 bericht of platformactie voor dit seminar is mislukt" in overview
    # A host sees the seminar, not the operational trouble.
    organiser.press("/manage/", "/manage/logout")
    host = db.session.scalar(db.select(User).filter_by(email="host@bmk.example"))
    set_password(host, PASSWORD)
    db.session.commit()
    Staff(client, "host@bmk.example").logged_in()
    assert "invalid access token" not in client.get(f"/manage/seminars/{seminar.id}").get_data(as_text=True)
    assert "invalid access token" not in client.get("/manage/").get_data(as_text=True)


def test_teams_seminars_say_the_join_link_is_shared(client, organiser, make_seminar):
    seminar = make_seminar()
    assert "dezelfde vergaderlink" not in organiser.text(f"/manage/seminars/{seminar.id}")
    seminar.video_provider = "teams"
    db.session.commit()
    assert "dezelfde vergaderlink" in organiser.text(f"/manage/seminars/{seminar.id}")
