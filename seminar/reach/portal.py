"""Portal pages of the interest list (organisers only): its figures, erasing an address, and
announcing a seminar (preview, a test send to the organiser's own address, then send)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, get_locale, gettext as _, ngettext
from flask_login import current_user

from ..database import write_transaction
from ..extensions import db
from ..jobs import kinds
from ..manage.access import organiser_required, require_login
from ..models import Seminar
from ..notify.mails import in_language
from ..notify import rendering
from ..tokens import external_url
from . import announce as announcing, service, stats
from .mails import announcement
from .models import Subscriber

bp = Blueprint("reach_manage", __name__, url_prefix="/manage/list")
bp.before_request(require_login)


def _reason(reason: str) -> str:
    return {
        "draft": _("The seminar is not published yet."),
        "cancelled": _("The seminar has been cancelled."),
        "started": _("The seminar has already started."),
        "full": _("The seminar is full: there is no seat to announce."),
        "missing": _("There is no such seminar."),
    }[reason]


@bp.get("/")
@organiser_required
def overview():
    return render_template("reach/portal.html", counts=stats.status_counts(), months=stats.growth(),
                           announcements=stats.announcements())


@bp.post("/erase")
@organiser_required
def erase():
    address = (request.form.get("email") or "").strip()
    if not address or len(address) > 254:
        flash(_("Please fill in an e-mail address."), "error")
    elif service.erase(address):
        flash(_("The address has been removed from the list, with the mails sent to it."), "success")
    else:
        flash(_("This address is not on the list."), "notice")
    return redirect(url_for("reach_manage.overview"), code=303)


def _seminar(seminar_id: int) -> Seminar:
    seminar = db.session.get(Seminar, seminar_id)
    if seminar is None:
        abort(404)
    return seminar


@bp.get("/seminars/<int:seminar_id>/announce")
@organiser_required
def announce_page(seminar_id: int):
    seminar = _seminar(seminar_id)
    reason = announcing.refusal(seminar)
    count = len(announcing.recipients(seminar.id)) if reason is None else 0
    sample = Subscriber(id=0, nonce="preview", name=current_user.name or "", email=current_user.email)
    page = external_url("public.seminar_page", slug=seminar.slug)
    # One language at a time (subscribers get theirs): the page's, or the other one on request.
    lang = request.args.get("preview") if request.args.get("preview") in ("nl", "en") else str(get_locale())
    with force_locale(lang), in_language(lang):
        composed = announcement(seminar, sample, page, page)
        composed.paragraphs = [p for p in composed.paragraphs if p]
        text, _html = rendering.ordinary(composed, lang)
    return render_template("reach/announce.html", seminar=seminar, reason=reason and _reason(reason),
                           count=count, preview=(lang, composed.subject, text),
                           other_preview="en" if lang == "nl" else "nl")


@bp.post("/seminars/<int:seminar_id>/announce/test")
@organiser_required
def announce_test(seminar_id: int):
    seminar = _seminar(seminar_id)
    with write_transaction():
        kinds.ANNOUNCEMENT_TEST.enqueue(seminar=db.session.get(Seminar, seminar.id), user_id=current_user.id)
    flash(_("A test mail is on its way to %(address)s.", address=current_user.email), "success")
    return redirect(url_for("reach_manage.announce_page", seminar_id=seminar.id), code=303)


@bp.post("/seminars/<int:seminar_id>/announce")
@organiser_required
def announce_send(seminar_id: int):
    seminar = _seminar(seminar_id)
    try:
        result = announcing.announce(seminar.id, user_id=current_user.id)
    except announcing.AnnounceRefused as exc:
        flash(_("Not announced: %(reason)s", reason=_reason(exc.reason)), "error")
        return redirect(url_for("reach_manage.announce_page", seminar_id=seminar_id), code=303)
    flash(ngettext("The announcement is being sent to %(num)d address.",
                   "The announcement is being sent to %(num)d addresses.", result.recipients)
          if result.recipients else _("Everyone on the list has had this announcement already."), "success")
    return redirect(url_for("reach_manage.overview"), code=303)
