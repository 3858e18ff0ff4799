"""Public pages after the seminar: certificate verification, the certificate download from the
manage page, and the evaluation form (opened from the follow-up mail)."""
from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..errors import render_error
from ..textcheck import multiline_text
from ..models import RegistrationStatus
from ..extensions import db
from ..tokens import InvalidToken, load_token
from . import certificates, evaluation
from .models import Certificate

bp = Blueprint("after", __name__)


@bp.get("/certificaat/<code>")
def verify_certificate(code: str):
    certificate = certificates.find(code)
    if certificate is None or certificate.revoked_at is not None:
        return render_error(404, _("Certificate not found"),
                            _("There is no valid certificate with this code. Please check that the "
                              "code was typed exactly as printed."))
    response = render_template("attendance/verify.html", certificate=certificate,
                               expired=certificate.expired_at is not None)
    # The answer is about one person: not for shared caches or search engines.
    return response, 200, {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _registration(purpose: str, token: str):
    try:
        return load_token(purpose, token)
    except InvalidToken:
        return None


@bp.get("/r/manage/<token>/certificaat.pdf")
def download_certificate(token: str):
    reg = _registration("manage", token)
    certificate = reg and db.session.scalar(select(Certificate).where(
        Certificate.registration_id == reg.id, Certificate.revoked_at.is_(None),
        Certificate.expired_at.is_(None)))
    if not certificate:
        return render_error(404, _("No certificate"), _("There is no certificate of attendance for this registration."))
    from .pdf import render_pdf  # fpdf2 loaded only where a PDF is made (pdf.py says why)

    pdf = render_pdf(certificate)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{certificates.filename(certificate)}"',
        "Cache-Control": "private, no-store"})


MARKS = [SelectChoice(str(n), str(n)) for n in range(1, 11)]
USEFULNESS = [SelectChoice(str(n), str(n)) for n in range(1, 6)]


class EvaluationForm(FlaskForm):
    overall = RadioField(_l("Your overall mark for this seminar (1 = very poor, 10 = excellent)"), choices=MARKS,
                         validators=[DataRequired(_l("Please choose a mark."))])
    usefulness = RadioField(_l("How useful is what you heard for your practice? (1 = not at all, 5 = very)"),
                            choices=USEFULNESS, validators=[DataRequired(_l("Please choose a number."))])
    comment = TextAreaField(_l("What should we keep or change for the next seminar? (optional)"),
                            validators=[Optional(), Length(max=2000, message=_l("At most %(max)d characters.")),
                                        multiline_text])


@bp.route("/r/evaluatie/<token>", methods=["GET", "POST"])
def evaluate(token: str):
    reg = _registration("evaluate", token)
    if reg is None:
        return render_error(404, _("This link does not work"),
                            _("The link is incomplete or no longer valid. Please use the most recent "
                              "mail you received from us."))
    seminar = reg.seminar
    if reg.evaluated:
        return render_template("attendance/evaluated.html", seminar=seminar, again=True)
    if not evaluation.may_evaluate(reg):
        return render_error(410, _("The evaluation is closed"), _("This evaluation can no longer be answered."))
    form = EvaluationForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("attendance/evaluate.html", form=form, seminar=seminar), 400
        stored = evaluation.answer(reg.id, int(form.overall.data), int(form.usefulness.data), form.comment.data or "")
        return render_template("attendance/evaluated.html", seminar=seminar, again=not stored)
    return render_template("attendance/evaluate.html", form=form, seminar=seminar)


@bp.app_context_processor
def certificate_helpers() -> dict:
    def certificate_for(registration) -> Certificate | None:
        """The registration's certificate while it can be downloaded (the manage page links it)."""
        if registration is None or registration.status != RegistrationStatus.CONFIRMED:
            return None
        return db.session.scalar(select(Certificate).where(
            Certificate.registration_id == registration.id, Certificate.revoked_at.is_(None),
            Certificate.expired_at.is_(None)))

    return {"certificate_for": certificate_for}
