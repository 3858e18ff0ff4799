"""Generated input (hypothesis): sign-up forms and tokens never cause a 500 or a half-stored
record. Together with the webhook bodies in test_webhooks this exercises >10,000 inputs per run."""
from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings, strategies as st
from itsdangerous import URLSafeTimedSerializer

from seminar.extensions import db
from seminar.models import Job, Registration

from .helpers import csrf_from

FUZZ = settings(max_examples=2500, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

anything = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
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


def test_generated_sign_up_forms(client, make_seminar):
    seminar = make_seminar(capacity=3)
    token = csrf_from(client.get(f"/seminars/{seminar.slug}").get_data(as_text=True))
    accepted: set[str] = set()

    @FUZZ
    @given(form_values)
    def post(values):
        response = client.post(f"/seminars/{seminar.slug}", data=dict(values, csrf_token=token))
        assert response.status_code in (303, 400), response.status_code
        if response.status_code == 303 and not values.get("website"):
            accepted.add(values["email"].strip().lower())

    post()
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
