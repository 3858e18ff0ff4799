"""Bad input gets a clear Dutch message with a 4xx status, loses nothing and stores nothing half."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from seminar.extensions import db
from seminar.models import Registration
from seminar.programme.service import cancel_seminar

from .helpers import csrf_from, links_in, read_eml, work


def stored() -> int:
    return db.session.scalar(db.select(db.func.count(Registration.id)))


@pytest.mark.parametrize("changes, message", [
    ({"name": ""}, "Vul je naam in."),
    ({"name": "   "}, "Vul je naam in."),
    ({"name": "A" * 121}, "Maximaal 120 tekens."),
    ({"email": ""}, "Vul je e-mailadres in."),
    ({"email": "anouk@"}, "Dit is geen geldig e-mailadres."),
    ({"email": "anouk kinderopvang.example"}, "Dit is geen geldig e-mailadres."),
    ({"email": "a" * 250 + "@x.nl"}, "Maximaal 254 tekens."),
    ({"organisation": ""}, "Vul je organisatie in."),
    ({"organisation": "O" * 201}, "Maximaal 200 tekens."),
    ({"location_type": ""}, "Kies de soort locatie."),
    ({"location_type": "casino"}, "Kies de soort locatie."),
    ({"question": "?" * 1001}, "Maximaal 1000 tekens."),
    ({"consent": None}, "Zonder je toestemming kunnen we je niet aanmelden."),
    ({"name": "<script>alert(1)</script>"}, "Gebruik alleen letters, cijfers en leestekens"),
    ({"organisation": "KDV <b>Zon</b>"}, "Gebruik alleen letters, cijfers en leestekens"),
])
def test_invalid_form_shows_dutch_field_error_and_keeps_input(person, make_seminar, changes, message):
    seminar = make_seminar()
    response = person.sign_up(seminar, **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    assert "<script>alert(1)</script>" not in page  # shown escaped, never as markup
    assert 'aria-invalid="true"' in page
    if changes.get("name") is None or "name" not in changes:
        assert 'value="Anouk de Vries"' in page  # what was typed stays in the form
    assert stored() == 0


def test_missing_csrf_token_is_refused_in_dutch(client, make_seminar):
    seminar = make_seminar()
    response = client.post(f"/seminars/{seminar.slug}", data={"name": "Anouk", "email": "a@b.nl"})
    assert response.status_code == 400
    assert "Het formulier is verlopen" in response.get_data(as_text=True)
    assert stored() == 0


def test_unknown_and_draft_seminars_are_not_found(client, make_seminar):
    draft = make_seminar(publish=False)
    for path in ("/seminars/bestaat-niet", f"/seminars/{draft.slug}", f"/seminars/{draft.slug}.ics"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Pagina niet gevonden" in response.get_data(as_text=True)


def test_sign_up_after_the_start_is_refused(person, make_seminar):
    seminar = make_seminar()
    page = person.client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
    seminar.start_at = datetime.now(timezone.utc) - timedelta(minutes=5)
    db.session.commit()
    response = person.client.post(f"/seminars/{seminar.slug}",
                                  data=dict(person.data, csrf_token=csrf_from(page)))
    assert response.status_code == 409
    assert "al begonnen" in response.get_data(as_text=True)
    assert stored() == 0


def test_sign_up_for_a_cancelled_seminar_is_refused(person, make_seminar):
    seminar = make_seminar()
    page = person.client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
    cancel_seminar(seminar.id)
    assert "geannuleerd" in person.client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
    response = person.client.post(f"/seminars/{seminar.slug}",
                                  data=dict(person.data, csrf_token=csrf_from(page)))
    assert response.status_code == 410
    assert "geannuleerd" in response.get_data(as_text=True)
    assert stored() == 0


class PastSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return super().get_timestamp() - 49 * 3600


def test_expired_forged_and_reused_links(app, person, make_seminar):
    seminar = make_seminar()
    person.sign_up(seminar)
    work()
    confirm = links_in(read_eml(app)[0])["confirm"]
    reg = db.session.scalars(db.select(Registration)).one()

    expired = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="seminar.confirm",
                                     signer=PastSigner).dumps({"r": reg.id})
    response = person.client.get(f"/r/confirm/{expired}")
    assert response.status_code == 410 and "verlopen" in response.get_data(as_text=True)

    forged = confirm[:-3] + ("aaa" if not confirm.endswith("aaa") else "bbb")
    for path in (forged, "/r/confirm/nonsense", "/r/manage/nonsense", "/r/join/nonsense"):
        response = person.follow(path)
        assert response.status_code == 404 and "werkt niet" in response.get_data(as_text=True)

    # A confirmation link is no manage link: tokens say what they may do.
    token = confirm.rsplit("/", 1)[1]
    assert person.client.get(f"/r/manage/{token}").status_code == 404

    assert person.press_button(confirm).status_code == 303
    again = person.follow(confirm)
    assert again.status_code == 409
    assert "al gebruikt" in again.get_data(as_text=True)
    db.session.refresh(reg)
    assert reg.status == "confirmed"


def test_double_confirm_post_keeps_one_seat(app, person, make_seminar):
    seminar = make_seminar(capacity=1)
    person.sign_up(seminar)
    work()
    confirm = links_in(read_eml(app)[0])["confirm"]
    page = person.follow(confirm).get_data(as_text=True)
    token = csrf_from(page)
    path = confirm.replace("http://seminar.test", "")
    first = person.client.post(path, data={"csrf_token": token})
    second = person.client.post(path, data={"csrf_token": token})
    assert (first.status_code, second.status_code) == (303, 409)
    assert seminar.confirmed_count == 1


def test_oversized_request_is_refused(client, make_seminar):
    seminar = make_seminar()
    response = client.post(f"/seminars/{seminar.slug}", data={"question": "x" * 300_000})
    assert response.status_code == 413
    assert "te groot" in response.get_data(as_text=True)
