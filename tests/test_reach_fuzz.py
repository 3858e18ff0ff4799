"""Generated input (hypothesis) for the interest list: the home page form and the list's signed
links never cause a 500 or a half-stored entry, and a link never shows anyone's address."""
from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings, strategies as st
from itsdangerous import URLSafeTimedSerializer

from seminar.extensions import db
from seminar.reach.models import Subscriber

from .helpers import csrf_from
from .reach_helpers import on_the_list

FUZZ = settings(max_examples=600, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

anything = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
plausible_email = st.builds(lambda a, b: f"{a}@{b}.nl", st.text(string.ascii_lowercase + "+.-", min_size=1, max_size=20),
                            st.text(string.ascii_lowercase, min_size=1, max_size=12))
interest_values = st.fixed_dictionaries({}, optional={
    "email": st.one_of(anything, plausible_email),
    "name": st.one_of(anything, st.just("Anouk de Vries")),
    "organisation": st.one_of(anything, st.just("KDV Zon")),
    "language": st.one_of(st.sampled_from(["nl", "en", "", "fr"]), anything),
    "website": st.sampled_from(["", "", "", "http://spam"]),
})


def test_generated_interest_forms(client):
    token = csrf_from(client.get("/").get_data(as_text=True))

    @FUZZ
    @given(interest_values)
    def post(values):
        response = client.post("/interesse", data=dict(values, csrf_token=token))
        assert response.status_code in (303, 400), response.status_code

    post()
    db.session.rollback()
    subs = db.session.scalars(db.select(Subscriber)).all()
    assert all(s.email and s.email_normalized and s.language in ("nl", "en") for s in subs)


def test_generated_list_links(app, client):
    sub = on_the_list(app, client, "anouk@kinderopvang.example")
    signer = {p: URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"seminar.list.{p}")
              for p in ("confirm", "unsubscribe", "reserve", "still")}
    payloads = st.one_of(
        st.none(), st.integers(), st.text(max_size=50),
        st.dictionaries(st.sampled_from(["s", "n", "m"]), st.one_of(
            st.integers(min_value=-2**70, max_value=2**70), st.just(sub.id), st.just(sub.nonce),
            st.text(max_size=20), st.none(), st.floats(allow_nan=True)), max_size=3),
    )

    @FUZZ
    @given(st.sampled_from(["confirm", "unsubscribe", "reserve", "still"]), st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=200),
        payloads.map(lambda p: ("signed", p))))
    def follow(purpose, token):
        if isinstance(token, tuple):
            token = signer[purpose].dumps(token[1])
        for method in ("get", "post"):
            response = getattr(client, method)(f"/r/list/{purpose}/{token}")
            assert response.status_code in (200, 303, 400, 404, 405, 410), response.status_code
            assert b"anouk@kinderopvang.example" not in response.data

    follow()
