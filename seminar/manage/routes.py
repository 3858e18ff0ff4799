"""Portal pages for seminars: overview, create/edit/publish/cancel, attendee list and exports.

Views are thin: access is decided in `access`, changes go through `programme.service`,
`registration.service` and `manage.service`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import exports
from ..extensions import db
from ..jobs import kinds
from ..models import Job, RegistrationStatus, Seminar
from ..programme import service as programme
from ..registration import service as registration
from ..timeutil import local_zone, to_local, utcnow
from ..video.base import PlatformError
from . import service
from .access import (bp, organiser_required, refuse_controls, registration_or_404, visible_seminars,
                     with_seminar)
from .chart import signup_chart
from ..notify import mail_schedule, relay_notice
from .forms import SeminarForm, email_list, normalise_hours

EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.get("/")
def dashboard():
    organiser = current_user.is_organiser
    return render_template(
        "manage/dashboard.html", seminars=visible_seminars(), now=utcnow(),
        failed=service.failed_count() if organiser else 0,
        platform_errors=service.seminars_with_platform_errors() if organiser else [],
        relay=relay_notice.notice() if organiser else None,
    )


def _start_utc(form: SeminarForm) -> datetime:
    return form.start.data.replace(tzinfo=local_zone()).astimezone(timezone.utc)


def _check_start(form: SeminarForm, seminar: Seminar | None) -> bool:
    start = _start_utc(form)
    if start <= utcnow() and (seminar is None or start != seminar.start_at):
        form.start.errors.append(_("The start must be in the future."))
        return False
    return True


@bp.route("/seminars/new", methods=["GET", "POST"])
@organiser_required
def create_seminar():
    form = SeminarForm()
    if form.validate_on_submit() and _check_start(form, None):
        try:
            seminar = programme.create_seminar(
                title=form.title.data, start_at=_start_utc(form),
                duration_minutes=form.duration_minutes.data, capacity=form.capacity.data,
                description=form.description.data or "", speakers=form.speakers.data or "",
                hosts=email_list(form.hosts.data), publish=form.publish.data,
                reminder_hours=normalise_hours(form.reminder_hours.data),
                digest_hours=normalise_hours(form.digest_hours.data),
            )
        except programme.SeminarError as exc:
            form.title.errors.append(_("The seminar could not be saved: %(reason)s", reason=str(exc)))
        else:
            flash(_("The seminar has been published: sign-up is open and the meeting is being "
                    "created.") if seminar.is_published else
                  _("The seminar has been saved as a draft. Publish it to open sign-up."), "success")
            return redirect(url_for("manage.seminar_page", seminar_id=seminar.id), code=303)
    return render_template("manage/seminar_form.html", form=form, seminar=None), \
        (400 if form.errors else 200)


@bp.get("/seminars/<int:seminar_id>")
@with_seminar()
def seminar_page(seminar: Seminar):
    organiser = current_user.is_organiser
    digests = list(db.session.scalars(
        select(Job).where(Job.seminar_id == seminar.id, Job.kind == kinds.HOST_DIGEST.name)
        .order_by(Job.due_at, Job.id)))
    if not organiser:  # a host sees when their own lists go out
        digests = [job for job in digests if job.payload.get("user_id") == current_user.id]
    return render_template(
        "manage/seminar.html", seminar=seminar, counts=service.status_counts(seminar),
        chart=signup_chart(seminar), digests=digests,
        failed_jobs=programme.failed_jobs(seminar) if organiser else [],
        provider=service.video_provider(seminar),
        mail_progress=mail_schedule.progress(seminar) if organiser else None,
    )


@bp.get("/seminars/<int:seminar_id>/start")
@with_seminar()
def start_meeting(seminar: Seminar):
    """The host's way into the meeting: a fresh start link from the platform."""
    try:
        link = service.host_link(seminar)
    except PlatformError:
        link = None
    if not link:
        flash(_("The video platform did not give a link to start the meeting just now. "
                "Try again in a minute, or start it from your own account at the platform."), "error")
        return redirect(url_for("manage.seminar_page", seminar_id=seminar.id), code=303)
    return redirect(link, code=303)


@bp.route("/seminars/<int:seminar_id>/edit", methods=["GET", "POST"])
@with_seminar(organiser_only=True)
def edit_seminar(seminar: Seminar):
    if seminar.is_cancelled:
        flash(_("A cancelled seminar cannot be changed."), "notice")
        return redirect(url_for("manage.seminar_page", seminar_id=seminar.id), code=303)
    form = SeminarForm(obj=seminar)
    if request.method == "GET":
        form.start.data = to_local(seminar.start_at).replace(tzinfo=None)
        form.hosts.data = "\n".join(host.email for host in seminar.hosts)
    if form.validate_on_submit() and _check_start(form, seminar):
        if form.capacity.data < seminar.confirmed_count:
            form.capacity.errors.append(
                _("%(num)d people already have a seat. Cancel registrations first, or choose at "
                  "least %(num)d seats.", num=seminar.confirmed_count))
        else:
            try:
                programme.update_seminar(
                    seminar.id, title=form.title.data, start_at=_start_utc(form),
                    duration_minutes=form.duration_minutes.data, capacity=form.capacity.data,
                    description=form.description.data or "", speakers=form.speakers.data or "",
                    reminder_hours=normalise_hours(form.reminder_hours.data),
                    digest_hours=normalise_hours(form.digest_hours.data),
                )
                service.set_hosts(seminar.id, email_list(form.hosts.data))
            except programme.SeminarError as exc:
                form.title.errors.append(_("The seminar could not be saved: %(reason)s", reason=str(exc)))
            else:
                flash(_("The changes have been saved. Attendees with a seat get a calendar update "
                        "when the time or title changed."), "success")
                return redirect(url_for("manage.seminar_page", seminar_id=seminar.id), code=303)
    return render_template("manage/seminar_form.html", form=form, seminar=seminar), \
        (400 if form.errors else 200)


@bp.post("/seminars/<int:seminar_id>/publish")
@with_seminar(organiser_only=True)
def publish_seminar(seminar: Seminar):
    try:
        programme.publish(seminar.id)
    except programme.SeminarError:
        flash(_("A cancelled seminar cannot be published."), "error")
    else:
        flash(_("The seminar has been published: sign-up is open and the meeting is being "
                "created."), "success")
    return redirect(url_for("manage.seminar_page", seminar_id=seminar.id), code=303)


@bp.route("/seminars/<int:seminar_id>/cancel", methods=["GET", "POST"])
@with_seminar(organiser_only=True)
def cancel_seminar(seminar: Seminar):
    if request.method == "POST":
        programme.cancel_seminar(seminar.id)
        flash(_("The seminar has been cancelled. Everyone on the list gets a mail, and the "
                "meeting is removed at the platform."), "success")
        return redirect(url_for("manage.seminar_page", seminar_id=seminar.id), code=303)
    return render_template("manage/cancel_seminar.html", seminar=seminar,
                           counts=service.status_counts(seminar))


@bp.get("/seminars/<int:seminar_id>/attendees")
@with_seminar()
def attendees(seminar: Seminar):
    query = request.args.get("q", "")[:200]
    status = request.args.get("status", "")
    sort = request.args.get("sort", "name")
    sort = sort if sort in service.SORTS else "name"
    descending = request.args.get("dir") == "desc"
    rows = service.attendee_list(seminar, query=query, status=status, sort=sort, descending=descending)
    return render_template("manage/attendees.html", seminar=seminar, rows=rows, query=query,
                           status=status, sort=sort, descending=descending,
                           counts=service.status_counts(seminar), statuses=service.STATUS_ORDER)


@bp.get("/seminars/<int:seminar_id>/attendees.<any(csv, xlsx):fmt>")
@with_seminar()
def export(seminar: Seminar, fmt: str):
    data = exports.as_csv(seminar) if fmt == "csv" else exports.as_xlsx(seminar)
    response = Response(data, mimetype=EXPORT_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="deelnemers-{seminar.slug}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"  # personal data: not kept by proxies or browsers
    return response


def _back(seminar: Seminar):
    target = request.form.get("back") or ""
    refuse_controls(target)
    if not target.startswith(f"/manage/seminars/{seminar.id}/attendees"):
        target = url_for("manage.attendees", seminar_id=seminar.id)
    return redirect(target, code=303)


@bp.post("/seminars/<int:seminar_id>/registrations/<int:registration_id>/cancel")
@with_seminar(organiser_only=True)
def cancel_registration(seminar: Seminar, registration_id: int):
    reg = registration_or_404(seminar, registration_id)
    if reg.is_active:
        registration.cancel(reg.id)
        flash(_("The registration of %(name)s has been cancelled; they get a mail. A freed seat "
                "goes to the first person on the waitlist.", name=reg.name), "success")
    return _back(seminar)


@bp.post("/seminars/<int:seminar_id>/registrations/<int:registration_id>/confirm")
@with_seminar(organiser_only=True)
def confirm_registration(seminar: Seminar, registration_id: int):
    """Confirm for someone whose confirmation mail went astray: a seat, or the waitlist."""
    reg = registration_or_404(seminar, registration_id)
    try:
        reg = registration.confirm(reg.id)
    except registration.RegistrationClosed:
        flash(_("This seminar is not open for sign-up."), "error")
        return _back(seminar)
    if reg.status == RegistrationStatus.CONFIRMED:
        flash(_("%(name)s now has a seat.", name=reg.name), "success")
    else:
        flash(_("The seminar is full: %(name)s is on the waitlist.", name=reg.name), "success")
    return _back(seminar)


@bp.post("/seminars/<int:seminar_id>/registrations/<int:registration_id>/seat")
@with_seminar(organiser_only=True)
def give_seat(seminar: Seminar, registration_id: int):
    try:
        reg, raised = service.give_seat_to(registration_or_404(seminar, registration_id).id)
    except service.PortalError as exc:
        flash(str(exc), "error")
        return _back(seminar)
    message = _("%(name)s now has a seat.", name=reg.name)
    if raised:
        message += " " + _("The seminar was full, so it now has %(num)d seats.", num=seminar.capacity)
    flash(message, "success")
    return _back(seminar)
