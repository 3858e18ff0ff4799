"""Portal pages after the seminar (on the portal's blueprint, so its login and access rules hold):
attendance with corrections and a chart, the participant list upload, the follow-up settings with
preview and hold, evaluation results, and the accreditation and evaluation exports."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.exceptions import RequestEntityTooLarge

from ..database import write_transaction
from ..errors import render_error
from ..extensions import db
from ..jobs import kinds
from ..manage.access import bp, registration_or_404, with_seminar
from ..manage.chart import Box
from ..models import Job, Registration, RegistrationStatus, Seminar
from ..notify.mails import compose
from . import evaluation, exports, followup
from .forms import AfterForm, CorrectionForm, ImportForm
from .imports import MAX_BYTES, ImportProblem, import_participants
from .service import CorrectionError, record_correction, summary

UPLOAD_LIMIT = MAX_BYTES + 512 * 1024  # the file plus the form around it


def allow_uploads() -> None:
    """Before every other before_request function (create_app registers it before CSRF's, which
    reads the form and with it the upload): participant lists are larger than any other form, so
    this one endpoint takes up to UPLOAD_LIMIT."""
    if request.endpoint == "manage.import_attendance":
        if (request.content_length or 0) > UPLOAD_LIMIT:
            # Refused before the upload is read at all (nothing is spooled to disk).
            raise RequestEntityTooLarge()
        request.max_content_length = UPLOAD_LIMIT


def too_large(exc: RequestEntityTooLarge):
    """413 for the whole app (create_app registers it): the upload says what the limit is."""
    if request.endpoint == "manage.import_attendance":
        return render_error(413, _("The file is too large"),
                            _("A participant list is at most %(mb)d MB. Is it the right file?",
                              mb=MAX_BYTES // (1024 * 1024)))
    return render_error(413)


@dataclass
class Bucket:
    label: str
    count: int
    attended: bool
    box: Box


def minutes_chart(result) -> list[Bucket]:
    """People per tenth of the seminar's length they attended (the bar chart in the portal)."""
    seminar = result.seminar
    tenths = [0] * 10
    for row in result.rows:
        tenths[min(9, row.minutes * 10 // max(1, seminar.duration_minutes))] += 1
    top = max(tenths) or 1
    return [Bucket(f"{index * 10}–{index * 10 + 10}%", count, (index + 1) * 10 > seminar.min_attendance_percent,
                   Box.standing(40 + index * 56, 44, 140, 120 * count / top))
            for index, count in enumerate(tenths)]


def _follow_up_jobs(seminar: Seminar) -> list[Job]:
    return list(db.session.scalars(select(Job).where(
        Job.seminar_id == seminar.id, Job.kind == kinds.FOLLOW_UP.name).order_by(Job.id)))


@bp.get("/seminars/<int:seminar_id>/aanwezigheid")
@with_seminar()
def attendance(seminar: Seminar):
    result = summary(seminar)
    form = AfterForm(obj=seminar)
    return render_template(
        "attendance/portal.html", seminar=seminar, result=result, chart=minutes_chart(result),
        form=form, correction=CorrectionForm(), upload=ImportForm(), jobs=_follow_up_jobs(seminar),
        due=followup.due_at(seminar), evaluation=evaluation.results(seminar),
        sent=followup.follow_up_sent(seminar))


@bp.post("/seminars/<int:seminar_id>/aanwezigheid/instellingen")
@with_seminar(organiser_only=True)
def after_settings(seminar: Seminar):
    form = AfterForm()
    if not form.validate_on_submit():
        result = summary(seminar)
        return render_template(
            "attendance/portal.html", seminar=seminar, result=result, chart=minutes_chart(result), form=form,
            correction=CorrectionForm(), upload=ImportForm(), jobs=_follow_up_jobs(seminar),
            due=followup.due_at(seminar), evaluation=evaluation.results(seminar),
            sent=followup.follow_up_sent(seminar)), 400
    had_recording, was_held = seminar.recording_url, seminar.follow_up_hold
    with write_transaction():
        s = db.session.get(Seminar, seminar.id)
        for name in ("slides_url", "recording_url", "evaluation_url", "register_name", "course_number", "points"):
            setattr(s, name, getattr(form, name).data or None)
        s.min_attendance_percent = form.min_attendance_percent.data
        s.follow_up_delay_minutes = form.follow_up_delay_minutes.data
        s.follow_up_hold = bool(form.follow_up_hold.data)
    if was_held and not form.follow_up_hold.data:
        followup.release(seminar.id)
    flash(_("The settings after the seminar have been saved."), "success")
    seminar = db.session.get(Seminar, seminar.id)
    if seminar.recording_url and seminar.recording_url != had_recording and followup.follow_up_sent(seminar):
        flash(_("The follow-up mails have already gone out. Use “Send the recording mail” to tell "
                "everyone the recording is online."), "notice")
    return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)


@bp.post("/seminars/<int:seminar_id>/aanwezigheid/opname-mail")
@with_seminar(organiser_only=True)
def send_recording_mail(seminar: Seminar):
    if not seminar.recording_url:
        flash(_("Fill in the recording's web address first."), "error")
        return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)
    followup.send_recording_mail(seminar.id)
    flash(_("The recording mail is on its way to everyone who had a seat."), "success")
    return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)


@bp.post("/seminars/<int:seminar_id>/aanwezigheid/<int:registration_id>/correctie")
@with_seminar(organiser_only=True)
def correct_attendance(seminar: Seminar, registration_id: int):
    reg = registration_or_404(seminar, registration_id)
    form = CorrectionForm()
    if not form.validate_on_submit():
        flash(_("Not corrected: %(reason)s", reason="; ".join(str(e) for errors in form.errors.values()
                                                            for e in errors)), "error")
        return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)
    try:
        with write_transaction():  # the correction and what follows from it, together
            record_correction(reg.id, attended=form.attended.data == "1", reason=form.reason.data,
                              user=current_user, minutes=form.minutes.data)
            followup.apply_correction(reg.id)
    except CorrectionError as exc:
        flash(_("Not corrected: %(reason)s", reason=str(exc)), "error")
    else:
        flash(_("The attendance of %(name)s has been corrected.", name=reg.name), "success")
    return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)


@bp.post("/seminars/<int:seminar_id>/aanwezigheid/import")
@with_seminar(organiser_only=True)
def import_attendance(seminar: Seminar):
    form = ImportForm()
    if not form.validate_on_submit():
        flash(_("Please choose a file."), "error")
        return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)
    data = form.participants.data.read(MAX_BYTES + 1)
    try:
        result = import_participants(seminar, data)
    except ImportProblem as exc:
        flash(_("Nothing was imported: %(problem)s", problem=str(exc.message)), "error")
        return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)
    flash(_("Imported: %(matched)d of %(rows)d rows matched %(people)d people with a seat.",
            matched=result.matched, rows=result.rows, people=result.people), "success")
    for row, address in result.unknown:
        flash(_("Row %(row)d (%(address)s) matches nobody with a seat: not imported.", row=row,
                address=address), "notice")
    for row, first in result.duplicates:
        flash(_("Row %(row)d is the same as row %(first)d: counted once.", row=row, first=first), "notice")
    return redirect(url_for("manage.attendance", seminar_id=seminar.id), code=303)


@bp.get("/seminars/<int:seminar_id>/aanwezigheid/voorbeeld/<any(aanwezig, afwezig):which>")
@with_seminar(organiser_only=True)
def preview_follow_up(seminar: Seminar, which: str):
    """The follow-up mail as an example person would get it (nothing is sent). Composed for a
    made-up registration, never stored: a real attendee's mail carries their signed evaluation and
    manage links, which are theirs alone."""
    wanted = which == "aanwezig"
    first = next((r for r in summary(seminar).rows if r.attended == wanted), None)
    if first is None:
        return render_error(404, _("No example"), _("Nobody would get this mail at the moment."))
    example = Registration(name="Voorbeeld Deelnemer", email="voorbeeld@example.invalid",
                           organisation="", status=RegistrationStatus.CONFIRMED,
                           language=first.registration.language or "nl")
    # Set without the back-reference, so the example never joins the seminar's registrations
    # (nor, through them, the session).
    set_committed_value(example, "seminar", seminar)
    kind = (kinds.FOLLOW_UP_ATTENDED if wanted else kinds.FOLLOW_UP_ABSENT).name
    with db.session.no_autoflush:
        composed = compose(Job(kind=kind, payload={}, registration=example, seminar=seminar))
    if composed is None:
        return render_error(404, _("No example"), _("Nobody would get this mail at the moment."))
    return Response(composed.rendered[1], mimetype="text/html", headers={"Cache-Control": "no-store"})


@bp.get("/seminars/<int:seminar_id>/evaluatie.csv")
@with_seminar()
def evaluation_export(seminar: Seminar):
    return Response(evaluation.as_csv(seminar), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="evaluatie-{seminar.slug}.csv"', "Cache-Control": "no-store"})


@bp.get("/seminars/<int:seminar_id>/accreditatie.csv")
@with_seminar()
def accreditation_export(seminar: Seminar):
    return Response(exports.accreditation_csv(seminar), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="accreditatie-{seminar.slug}.csv"',
        "Cache-Control": "no-store"})
