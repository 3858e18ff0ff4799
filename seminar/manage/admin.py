"""Organiser-only pages: portal accounts (hosts), the outbox, and searching registrations."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..database import database_id
from ..extensions import db
from ..models import Job, JobState, RegistrationStatus, User
from ..notify import relay_notice
from . import service
from .access import bp, organiser_required
from .forms import UserForm
from .passwords import request_reset

# The outbox preview is a document of its own, shown in a sandboxed frame: the mail's own inline
# styles apply there, and nothing in it can run or reach out.
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; "
               "frame-ancestors 'self'")


# ---------------------------------------------------------------- accounts

@bp.get("/users")
@organiser_required
def users():
    return render_template("manage/users.html", users=service.users())


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@organiser_required
def edit_user(user_id: int | None = None):
    user = db.session.get(User, user_id) if user_id is not None else None
    if user_id is not None and user is None:
        abort(404)
    form = UserForm(obj=user)
    if user is not None and request.method == "GET":
        form.invite.data = False
    if form.validate_on_submit():
        if user is not None and user.id == current_user.id and (
                form.role.data != "organiser" or not form.active.data):
            form.role.errors.append(_("You cannot take away your own organiser access."))
        else:
            try:
                saved = service.save_user(user, email=form.email.data, name=form.name.data or "",
                                          role=form.role.data, active=form.active.data)
            except service.PortalError as exc:
                form.email.errors.append(str(exc))
            else:
                if form.invite.data and saved.active:
                    request_reset(saved.email, invite=True)
                    flash(_("Saved. %(email)s gets a mail with a link to choose a password.",
                            email=saved.email), "success")
                else:
                    flash(_("Saved."), "success")
                return redirect(url_for("manage.users"), code=303)
    return render_template("manage/user_form.html", form=form, user=user), (400 if form.errors else 200)


@bp.post("/users/<int:user_id>/invite")
@organiser_required
def invite_user(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if request_reset(user.email, invite=True):
        flash(_("%(email)s gets a mail with a link to choose a password.", email=user.email), "success")
    else:
        flash(_("This account is switched off."), "error")
    return redirect(url_for("manage.users"), code=303)


# ---------------------------------------------------------------- outbox

@bp.get("/outbox")
@organiser_required
def outbox():
    state = request.args.get("state", "")
    family = request.args.get("family", "")
    seminar_id = database_id(request.args.get("seminar"))
    jobs = service.outbox(state=state, family=family, seminar_id=seminar_id)
    return render_template("manage/outbox.html", jobs=jobs, state=state, family=family,
                           seminar_id=seminar_id, states=[s.value for s in JobState],
                           recipient=service.job_recipient, relay=relay_notice.notice())


def _job(job_id: int) -> Job:
    return db.session.get(Job, job_id) or abort(404)


@bp.get("/outbox/<int:job_id>")
@organiser_required
def job(job_id: int):
    job = _job(job_id)
    return render_template("manage/job.html", job=job, rendered=service.render_job(job),
                           recipient=service.job_recipient(job))


@bp.get("/outbox/<int:job_id>/preview")
@organiser_required
def job_preview(job_id: int):
    rendered = service.render_job(_job(job_id))
    if rendered is None or rendered.html is None:
        abort(404)
    response = Response(rendered.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/outbox/<int:job_id>/resend")
@organiser_required
def resend(job_id: int):
    _job(job_id)
    try:
        queued = service.resend(job_id)
    except service.PortalError as exc:
        flash(str(exc), "error")
        return redirect(url_for("manage.job", job_id=job_id), code=303)
    flash(_("Queued: the worker sends it within a minute."), "success")
    return redirect(url_for("manage.job", job_id=queued.id), code=303)


# ---------------------------------------------------------------- search

@bp.get("/registrations")
@organiser_required
def registrations():
    query = request.args.get("q", "")[:200]
    return render_template("manage/registrations.html", query=query,
                           rows=service.search_registrations(query))


# ---------------------------------------------------------------- one person's data (AVG)

@bp.get("/privacy/export")
@organiser_required
def privacy_export():
    """Everything stored about one address, as a JSON file (a subject access request)."""
    import json

    from .. import privacy

    email = request.args.get("email", "").strip()[:254]
    if not email:
        abort(400)
    body = json.dumps(privacy.export_person(email), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="gegevens.json"'})


@bp.route("/privacy/erase", methods=["GET", "POST"])
@organiser_required
def privacy_erase():
    """Erase one person's data now, after a confirmation page (a right-to-erasure request)."""
    from .. import privacy

    email = (request.values.get("email") or "").strip()[:254]
    if not email:
        abort(400)
    regs = [r for r in privacy.registrations_of(email) if r.status != RegistrationStatus.PURGED]
    if request.method == "POST":
        count = privacy.erase_person(email)
        flash(_("The data of %(email)s has been erased (%(num)d registrations).", email=email, num=count),
              "success")
        return redirect(url_for("manage.registrations"), code=303)
    return render_template("manage/erase.html", email=email, regs=regs)
