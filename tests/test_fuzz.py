"""Generated input (hypothesis): sign-up forms (every Unicode category in every field) and tokens
never cause a 500 or a half-stored record, and what was stored exports cleanly. Together with the
portal fuzzing (test_fuzz_portal) and the webhook bodies in test_webhooks this exercises >10,000
inputs per run."""
from __future__ import annotations

import io
import string
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings, strategies as st
from itsdangerous import URLSafeTimedSerializer
from openpyxl import load_workbook

from seminar.extensions import db
from seminar.models import Job, Registration

from .helpers import csrf_from
from .portal_helpers import Staff, make_user

FUZZ = settings(max_examples=2500, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Every Unicode category: controls (C0, C1, NUL), format characters (bidi overrides and
# isolates, zero width), surrogates, private use, unassigned, line and paragraph separators.
NASTY = "\x00\x07\x1b\x7f\x85\x9b\u200b\u200d\u202a\u202e\u2066\u2069\ufeff\ud800\udfff\ue000\U0010fffd\u2028\r\n\t<>&\"'"
unicode_char = st.one_of(st.characters(), st.characters(categories=["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"]),
                         st.sampled_from(NASTY))
anything = st.text(alphabet=unicode_char, max_size=300)


def form_body(values: dict) -> bytes:
    """A form as a browser (or anyone) sends it: UTF-8, with surrogates as the bytes they would be
    (invalid UTF-8), which the test client could not encode."""
    return urlencode(values, encoding="utf-8", errors="surrogatepass").encode("ascii")


FORM = "application/x-www-form-urlencoded"
plausible_email = st.builds(lambda a, b: f"{a}@{b}.nl", st.text(string.ascii_lowercase + "+.-", min_size=1, max_size=20),
                            st.text(string.ascii_lowercase, min_size=1, max_size=12))
form_values = st.fixed_dictionaries({}, optional={
    "name": st.one_of(anything, st.just("Anouk de Vries"), st.text(max_size=200)),
    "email": st.one_of(anything, plausible_email),
    "organisation": st.one_of(anything, st.just("KDV Zon")),
    "location_type": st.one_of(st.sampled_from(["kdv", "bso", "gastouder", "", "x"]), anything),
    "question": st.one_of(anything, st.text(max_size=1200)),
    "consent": st.sampled_from(["y", "", "on", "false"]),
    "website": st.sampled_from(["", "", "", "http://spam"]),
    "interest": st.sampled_from(["y", "", "on"]),
})


def exports_of_what_was_stored(client, runner, seminar) -> None:
    """The attendee list of whatever the fuzzing stored: portal CSV and XLSX, the CLI, and each
    person's data export."""
    db.session.rollback()
    make_user("fuzz-org@bmk.example")
    staff = Staff(client, "fuzz-org@bmk.example").logged_in()
    for fmt in ("csv", "xlsx"):
        response = staff.get(f"/manage/seminars/{seminar.id}/attendees.{fmt}")
        assert response.status_code == 200, fmt
    book = load_workbook(io.BytesIO(staff.get(f"/manage/seminars/{seminar.id}/attendees.xlsx").data))
    rows = list(book.active.iter_rows(values_only=True))
    result = runner.invoke(args=["seminar", "attendees", str(seminar.id)])
    assert result.exit_code == 0
    assert not any(ch in result.output for ch in "\x1b\x07\x00\u202e")
    emails = db.session.scalars(db.select(Registration.email)).all()
    assert len(rows) == len(emails) + 1
    for address in emails:
        assert staff.get("/manage/privacy/export", query_string={"email": address}).status_code == 200


def test_generated_sign_up_forms(client, runner, make_seminar):
    seminar = make_seminar(capacity=3)
    token = csrf_from(client.get(f"/seminars/{seminar.slug}").get_data(as_text=True))
    accepted: set[str] = set()

    @FUZZ
    @given(form_values)
    def post(values):
        response = client.post(f"/seminars/{seminar.slug}", data=form_body(dict(values, csrf_token=token)),
                               content_type=FORM)
        assert response.status_code in (303, 400), response.status_code
        if response.status_code == 303 and not values.get("website"):
            accepted.add(values["email"].strip().lower())

    post()
    exports_of_what_was_stored(client, runner, seminar)
    db.session.rollback()
    regs = db.session.scalars(db.select(Registration)).all()
    # Nothing half-stored: every row is complete and has its confirmation mail queued.
    assert all(r.name and r.email and r.organisation and r.location_type for r in regs)
    assert len(regs) <= len(accepted) + 1
    mails = db.session.scalar(db.select(db.func.count(Job.id)).where(Job.kind == "mail.confirm_address"))
    assert mails >= len(regs)


def test_generated_tokens(app, client, make_seminar):
    make_seminar()
    signer = {p: URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"seminar.{p}")
              for p in ("confirm", "manage", "join")}
    payloads = st.one_of(
        st.none(), st.integers(), st.text(max_size=50), st.lists(st.integers(), max_size=3),
        st.dictionaries(st.sampled_from(["r", "x"]), st.one_of(
            st.integers(min_value=-2**70, max_value=2**70), st.text(max_size=20), st.none(),
            st.floats(allow_nan=True), st.lists(st.integers(), max_size=2)), max_size=2),
    )

    @FUZZ
    @given(st.sampled_from(["confirm", "manage", "join"]), st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=200),
        payloads.map(lambda p: ("signed", p))))
    def follow(purpose, token):
        if isinstance(token, tuple):
            token = signer[purpose].dumps(token[1])
        for method in ("get", "post"):
            response = getattr(client, method)(f"/r/{purpose}/{token}")
            assert response.status_code in (400, 404, 405, 410), response.status_code

    follow()
