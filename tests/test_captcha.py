"""The captcha hook: off by default; when switched on, a sign-up needs a solution the provider
accepts (checked against a local stand-in of the provider's verify endpoint)."""
from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from seminar.extensions import db
from seminar.models import Registration

from .helpers import csrf_from


class VerifyStandIn:
    """Answers like Friendly Captcha's siteverify: success only for the solution 'goed'."""

    def __init__(self):
        self.requests = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/siteverify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request):
        body = json.loads(request.get_data() or b"{}")
        self.requests.append(body)
        return Response(json.dumps({"success": body.get("solution") == "goed"}),
                        mimetype="application/json")


@pytest.fixture(scope="module")
def provider():
    stand_in = VerifyStandIn()
    yield stand_in
    stand_in.server.shutdown()


@pytest.fixture
def app_config(provider):
    return {"CAPTCHA_VERIFY_URL": provider.url, "CAPTCHA_SECRET": "geheim", "CAPTCHA_SITE_KEY": "site",
            "CAPTCHA_SCRIPT_URL": "https://cdn.captcha.example/widget.js",
            "CAPTCHA_CSP_SOURCES": "https://cdn.captcha.example"}


def stored():
    return db.session.scalar(db.select(db.func.count(Registration.id)))


def test_widget_shown_and_allowed_by_csp(client, make_seminar):
    seminar = make_seminar()
    response = client.get(f"/seminars/{seminar.slug}")
    assert 'data-sitekey="site"' in response.get_data(as_text=True)
    assert "script-src 'self' https://cdn.captcha.example" in response.headers["Content-Security-Policy"]


def test_sign_up_needs_an_accepted_solution(person, make_seminar, provider):
    seminar = make_seminar()
    missing = person.sign_up(seminar)
    assert missing.status_code == 400 and "een persoon" in missing.get_data(as_text=True)
    wrong = person.sign_up(seminar, **{"frc-captcha-solution": "fout"})
    assert wrong.status_code == 400 and stored() == 0
    right = person.sign_up(seminar, **{"frc-captcha-solution": "goed"})
    assert right.status_code == 303 and stored() == 1
    assert provider.requests[-1] == {"solution": "goed", "secret": "geheim", "sitekey": "site"}


@pytest.mark.parametrize("app_config", [{"CAPTCHA_VERIFY_URL": "http://127.0.0.1:9/siteverify"}])
def test_unreachable_provider_lets_the_sign_up_through(person, make_seminar):
    seminar = make_seminar()
    assert person.sign_up(seminar, **{"frc-captcha-solution": "x"}).status_code == 303
    assert stored() == 1


def test_off_by_default_shows_no_widget(client, make_seminar, app):
    app.config["CAPTCHA_VERIFY_URL"] = None
    seminar = make_seminar()
    assert "data-sitekey" not in client.get(f"/seminars/{seminar.slug}").get_data(as_text=True)
