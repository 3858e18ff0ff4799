"""Every mail the service can send reads in one language: the attendee's (Dutch or English), and
Dutch for portal users. Composed directly for each kind, so mails the browser flows never reach
(waitlist, promotion, reminder, change, cancellation, host lists, password links) are covered too,
and a new kind is covered as soon as it is registered."""
from __future__ import annotations

import pytest

from seminar.extensions import db
from seminar.models import Job, User
from seminar.jobs import kinds
from seminar.notify.mails import compose
from seminar.registration.service import SignUpData, sign_up

from .language import Catalogue

STATUSES = ["pending", "confirmed", "waitlisted", "cancelled", "lapsed"]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


def read(composed) -> str:
    text, _html = composed.rendered
    return f"{composed.subject}\n{text}"


def compose_alone(job: Job):
    """Compose without keeping the job (its registration may have cascaded it into the session)."""
    try:
        return compose(job)
    finally:
        if job in db.session:
            db.session.expunge(job)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_attendee_mail_is_in_the_attendees_language(app, make_seminar, catalogue, lang):
    seminar = make_seminar(title="Signalen herkennen", speakers="Dr. Mirjam Bakker")
    seminar.recording_url = "https://video.example/opname"  # the mails after the seminar use it
    reg = sign_up(seminar.id, SignUpData(name="Anouk de Vries", email="anouk@kinderopvang.example",
                                         organisation="De Boomhut", location_type="kdv",
                                         question="", language=lang))
    reg.join_url = "https://meet.jit.si/room"
    wrong, silent = {}, []
    for kind in sorted(kind.name for kind in kinds.mails() if not (kind.to_users or kind.to_subscribers)):
        method = "CANCEL" if "cancel" in kind else "REQUEST"
        mails = []
        for status in STATUSES:  # each kind is composed only for some statuses
            reg.status = status
            db.session.flush()
            job = Job(kind=kind, registration=reg, seminar_id=seminar.id,
                      payload={"method": method, "sequence": 1, "hours": 24})
            composed = compose_alone(job)
            if composed is not None:
                mails.append(read(composed))
        if not mails:
            silent.append(kind)
        found = sorted({piece for text in mails for piece in catalogue.left_in(text, lang)})
        if found:
            wrong[kind] = found
    db.session.rollback()
    assert silent == [], "composed for no status at all (extend STATUSES)"
    assert wrong == {}, f"text in the other language than {lang!r}"


def test_every_portal_mail_is_in_dutch(app, make_seminar, catalogue):
    seminar = make_seminar(title="Signalen herkennen")
    host = User(email="host@bmk.example", name="Fatima El Amrani", role="host")
    db.session.add(host)
    seminar.hosts.append(host)
    db.session.flush()
    payloads = {"mail.host_digest": [{"hours": 24}, {"hours": 1, "final": True}],
                "mail.password_reset": [{}, {"invite": True}]}
    wrong = {}
    for kind in sorted(kind.name for kind in kinds.mails() if kind.to_users):
        for payload in payloads.get(kind, [{}]):
            job = Job(kind=kind, seminar_id=seminar.id, seminar=seminar,
                      payload={"user_id": host.id, **payload})
            composed = compose_alone(job)
            assert composed is not None, kind
            found = catalogue.left_in(read(composed), "nl")
            if found:
                wrong[kind] = found
    db.session.rollback()
    assert wrong == {}
