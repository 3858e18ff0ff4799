"""Certificates of attendance: the PDF read back with a real parser (pypdf), and the public
verification page for a good, a tampered, a revoked and an expired code."""
from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from pypdf import PdfReader

from seminar.attendance import certificates
from seminar.attendance.models import Certificate
from seminar.attendance.pdf import render_pdf
from seminar.extensions import db
from seminar.models import Registration, Seminar
from seminar.registration.service import SignUpData, confirm, sign_up

from .helpers import future
from .video_kit import fresh

A4 = (595.28, 841.89)  # points


def attendee(seminar, name="Ĳsbrand van der Hoëvé-Émile", language="nl", **extra) -> Registration:
    data = SignUpData(name=name, email=f"p{abs(hash(name)) % 10**8}@kinderopvang.example",
                      organisation="Kinderopvang Het Ĳsvogeltje", location_type="kdv", language=language)
    reg = sign_up(seminar.id, data)
    confirm(reg.id)
    reg = fresh(Registration, reg.id)
    for key, value in extra.items():
        setattr(reg, key, value)
    db.session.commit()
    return reg


def issued(reg: Registration, minutes: int = 88) -> Certificate:
    certificate = certificates.issue(fresh(Registration, reg.id), minutes)
    db.session.commit()
    return certificate


def read(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def embedded_fonts(reader: PdfReader) -> set[str]:
    names = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                if "/FontFile2" in descriptor:
                    names.add(str(font["/BaseFont"]))
    return names


@pytest.fixture
def seminar(app, make_seminar):
    s = make_seminar(title="Signalen herkennen bij jonge kinderen", start_at=future(days=5), duration_minutes=90,
                     speakers="Dr. Maaike Ëngels, Joost de Ruijter")
    return fresh(Seminar, s.id)


def test_the_dutch_certificate_reads_back_with_its_details(app, seminar):
    s = fresh(Seminar, seminar.id)
    s.register_name, s.course_number, s.points = "Registerplein", "RP-2027-00123", "2"
    db.session.commit()
    reg = attendee(seminar, register_number="SKJ123456")
    certificate = issued(reg)
    reader, text = read(render_pdf(certificate))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == A4
    flat = " ".join(text.split())
    for expected in ("Bewijs van deelname", "Ĳsbrand van der Hoëvé-Émile", "Kinderopvang Het Ĳsvogeltje",
                     "Signalen herkennen bij jonge kinderen", "1 uur en 30 minuten", "Dr. Maaike Ëngels",
                     "Registerplein", "RP-2027-00123", "2 punten", "SKJ123456", certificate.code,
                     f"http://seminar.test/certificaat/{certificate.code}"):
        assert expected in flat, expected
    # Both faces embedded as (subset) TrueType font files, so every reader shows the same letters.
    fonts = embedded_fonts(reader)
    assert len(fonts) == 2 and all("DejaVu" in name for name in fonts), fonts


def test_english_for_people_who_signed_up_in_english(app, seminar):
    certificate = issued(attendee(seminar, name="Jane Doe", language="en"))
    _, text = read(render_pdf(certificate))
    flat = " ".join(text.split())
    assert "Certificate of attendance" in flat and "1 hour and 30 minutes" in flat
    assert "Bewijs" not in flat


@pytest.mark.parametrize("name", [
    "محمد عبد الله الهاشمي",  # right to left
    "שרה בת-אברהם כהן",
    "Maria-Magdalena " + "Wilhelmina-Theodora van den Bergh-" * 3 + "Ĳzerman",  # 120 characters
    "李小龍 Lee",  # glyphs the font does not have: shown as missing, not a crash
])
def test_right_to_left_and_very_long_names_render(app, seminar, name, caplog):
    reg = attendee(seminar, name=name[:120])
    with caplog.at_level(logging.DEBUG):
        caplog.clear()
        reader, text = read(render_pdf(issued(reg)))
    assert len(reader.pages) == 1 and "Bewijs van deelname" in text
    if name[0] in "مש":  # shaped: drawn right to left with joined letters, read back as typed
        assert name in text
    # Nothing personal in logs: not the name, nor its characters the font lacks.
    assert not [r for r in caplog.records if r.name.startswith("fpdf") and r.levelno >= logging.WARNING]
    assert not any(part in caplog.text for part in ("李", "小", "龍", name.split()[0]))


def test_verification_shows_only_initials_seminar_and_date(app, client, seminar):
    reg = attendee(seminar)
    certificate = issued(reg)
    page = client.get(f"/certificaat/{certificate.code}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "echt" in html
    assert "Ĳ. v. d. H." in html and seminar.title in html
    assert "Hoëvé" not in html and reg.email not in html and "Ĳsvogeltje" not in html
    assert page.headers["Cache-Control"] == "no-store"


def test_a_tampered_or_revoked_code_gives_404(app, client, seminar):
    certificate = issued(attendee(seminar))
    tampered = certificate.code[:-1] + ("A" if certificate.code[-1] != "A" else "B")
    assert client.get(f"/certificaat/{tampered}").status_code == 404
    assert client.get("/certificaat/" + "x" * 300).status_code == 404
    certificate = fresh(Certificate, certificate.id)
    certificate.revoked_at = certificate.issued_at
    db.session.commit()
    assert client.get(f"/certificaat/{certificate.code}").status_code == 404


def test_after_its_retention_the_page_says_it_expired(app, client, seminar):
    certificate = issued(attendee(seminar))
    assert certificates.expire_due(seminar.end_at + timedelta(days=729)) == 0
    assert certificates.expire_due(seminar.end_at + timedelta(days=731)) == 1
    db.session.commit()
    page = client.get(f"/certificaat/{certificate.code}?lang=en")
    assert page.status_code == 200 and "expired from our records" in page.get_data(as_text=True)
    kept = fresh(Certificate, certificate.id)
    assert (kept.name, kept.organisation, kept.registration_id) == ("", "", None)


def test_downloadable_from_the_manage_page(app, client, seminar):
    from seminar.tokens import make_token
    reg = attendee(seminar)
    token = make_token("manage", reg)
    page = client.get(f"/r/manage/{token}").get_data(as_text=True)
    assert "certificaat.pdf" not in page
    assert client.get(f"/r/manage/{token}/certificaat.pdf").status_code == 404
    issued(reg)
    page = client.get(f"/r/manage/{token}").get_data(as_text=True)
    assert f"/r/manage/{token}/certificaat.pdf" in page
    download = client.get(f"/r/manage/{token}/certificaat.pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert "Ĳsbrand" in read(download.data)[1]
    assert client.get("/r/manage/forged/certificaat.pdf").status_code == 404


def test_the_purge_keeps_certificates_longer_and_logs_both(app, client, seminar):
    from seminar import privacy
    from seminar.models import PurgeLog
    reg = attendee(seminar, register_number="REG-77")
    certificate = issued(reg)
    end = fresh(Seminar, seminar.id).end_at
    report = privacy.purge(end + timedelta(days=184))  # RETENTION_DAYS (183) passed
    assert report.total == 1 and report.certificates == 0
    purged = fresh(Registration, reg.id)
    assert (purged.status, purged.name, purged.register_number) == ("purged", "", "")
    page = client.get(f"/certificaat/{certificate.code}")
    assert page.status_code == 200 and "Ĳ. v. d. H." in page.get_data(as_text=True)  # still verifies
    report = privacy.purge(end + timedelta(days=731))
    assert report.certificates == 1 and "certificate-retention: 1 certificates" in report.lines()
    logs = db.session.scalars(db.select(PurgeLog).order_by(PurgeLog.id)).all()
    assert [(log.reason, log.registrations, log.certificates) for log in logs] == [
        ("retention", 1, 0), ("cert-retention", 0, 1)]
    kept = fresh(Certificate, certificate.id)
    assert (kept.name, kept.register_number, kept.seminar_title) == ("", "", "")
    assert "Dit bewijs van deelname is door ons uitgegeven" in client.get(f"/certificaat/{certificate.code}").get_data(as_text=True)


def test_privacy_page_says_certificates_are_kept_longer(client):
    html = client.get("/privacy?lang=en").get_data(as_text=True)
    assert "730 days after the seminar" in html


def test_logo_and_signatory_from_the_settings(app, seminar, tmp_path):
    from PIL import Image
    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 60), (200, 30, 90)).save(logo)
    app.config.update(CERTIFICATE_LOGO=str(logo), CERTIFICATE_SIGNATORY="Marieke Ĳzendoorn",
                      CERTIFICATE_SIGNATORY_ROLE="Directeur", ORGANISATION_NAME="BMK")
    reader, text = read(render_pdf(issued(attendee(seminar))))
    flat = " ".join(text.split())
    assert "Marieke Ĳzendoorn" in flat and "Directeur" in flat and "Georganiseerd door BMK" in flat
    assert len(reader.pages[0].images) == 1
    app.config["CERTIFICATE_LOGO"] = str(tmp_path / "missing.png")  # a wrong path leaves the logo off
    reader, _ = read(render_pdf(issued(attendee(seminar, name="Tweede Persoon"))))
    assert len(reader.pages[0].images) == 0
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    app.config["CERTIFICATE_LOGO"] = str(tmp_path / "broken.png")  # a broken file: left off, logged
    reader, text = read(render_pdf(issued(attendee(seminar, name="Derde Persoon"))))
    assert len(reader.pages[0].images) == 0 and "Derde Persoon" in text
