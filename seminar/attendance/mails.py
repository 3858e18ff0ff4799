"""The mails after the seminar: thanks with the certificate, the absentee's mail, "the recording is
online", and the attendance summary for hosts and organisers. Composed at send time; each is the
handler of its kind in seminar/jobs/kinds.py."""
from __future__ import annotations

from sqlalchemy import func, select

from .. import tokens
from ..extensions import db
from ..models import Job, Registration, RegistrationStatus, Seminar, SeminarState, User
from ..notify.composed import Composed, _, ngettext
from ..templating import when
from ..timeutil import utcnow
from . import certificates
from .models import Certificate, EvaluationAnswer
from .service import summary

NEXT_SEMINARS = 3


def _details(seminar: Seminar) -> list[tuple[str, str]]:
    return [(_("Seminar"), seminar.title), (_("When"), when(seminar))]


def _links(seminar: Seminar) -> list[str]:
    paragraphs = []
    if seminar.slides_url:
        paragraphs.append(_("The slides: %(link)s", link=seminar.slides_url))
    if seminar.recording_url:
        paragraphs.append(_("The recording: %(link)s", link=seminar.recording_url))
    return paragraphs


def evaluation_link(reg: Registration) -> str:
    return reg.seminar.evaluation_url or tokens.link("evaluate", reg)


def _applies(reg: Registration) -> bool:
    # Nobody who cancelled hears anything; a cancelled seminar sends nothing.
    return reg.status == RegistrationStatus.CONFIRMED and not reg.seminar.is_cancelled


def follow_up_attended(job: Job, reg: Registration) -> Composed | None:
    if not _applies(reg):
        return None
    certificate = db.session.scalar(select(Certificate).where(
        Certificate.registration_id == reg.id, Certificate.revoked_at.is_(None)))
    seminar = reg.seminar
    paragraphs = [
        _("Hello %(name)s,", name=reg.name),
        _("Thank you for taking part in the online seminar below."),
    ]
    attachments = []
    if certificate is not None:
        paragraphs.append(_("Your certificate of attendance is attached to this mail (PDF). Anyone can check "
                            "that it is genuine at %(link)s", link=certificates.verification_url(certificate)))
        from .pdf import render_pdf  # fpdf2 loaded only where a PDF is made (pdf.py says why)

        attachments.append((certificates.filename(certificate), "application/pdf", render_pdf(certificate)))
    paragraphs += _links(seminar)
    paragraphs.append(_("Would you tell us what you thought? Three short questions, answered anonymously: "
                        "%(link)s", link=evaluation_link(reg)))
    return Composed(
        subject=_("Thank you for taking part: %(title)s", title=seminar.title),
        paragraphs=paragraphs,
        action=(_("Give your opinion"), evaluation_link(reg)),
        details=_details(seminar),
        attachments=attachments,
    )


def _next_seminars(seminar: Seminar) -> list[str]:
    upcoming = db.session.scalars(select(Seminar).where(
        Seminar.state == SeminarState.PUBLISHED, Seminar.start_at > utcnow(), Seminar.id != seminar.id)
        .order_by(Seminar.start_at).limit(NEXT_SEMINARS)).all()
    return [f"{s.title}, {when(s)}: {tokens.external_url('public.seminar_page', slug=s.slug)}" for s in upcoming]


def follow_up_absent(job: Job, reg: Registration) -> Composed | None:
    if not _applies(reg):
        return None
    seminar = reg.seminar
    paragraphs = [_("Hello %(name)s,", name=reg.name), _("We missed you at the online seminar below.")]
    if seminar.recording_url:
        paragraphs.append(_("You can watch the recording here: %(link)s", link=seminar.recording_url))
    if seminar.slides_url:
        paragraphs.append(_("The slides: %(link)s", link=seminar.slides_url))
    upcoming = _next_seminars(seminar)
    if upcoming:
        paragraphs.append(_("Perhaps see you next time? The next seminars:"))
        paragraphs += upcoming
    return Composed(
        subject=_("We missed you: %(title)s", title=seminar.title),
        paragraphs=paragraphs,
        action=(_("Watch the recording"), seminar.recording_url) if seminar.recording_url else None,
        details=_details(seminar),
    )


def recording_online(job: Job, reg: Registration) -> Composed | None:
    seminar = reg.seminar
    if not _applies(reg) or not seminar.recording_url:
        return None
    return Composed(
        subject=_("The recording is online: %(title)s", title=seminar.title),
        paragraphs=[_("Hello %(name)s,", name=reg.name),
                    _("The recording of the online seminar below is online now: %(link)s",
                      link=seminar.recording_url)],
        action=(_("Watch the recording"), seminar.recording_url),
        details=_details(seminar),
    )


def attendance_summary(job: Job, user: User) -> Composed | None:
    seminar = job.seminar
    if seminar is None or seminar.is_cancelled or not (user.is_organiser or user in seminar.hosts):
        return None
    result = summary(seminar)
    answers = db.session.scalar(select(func.count(EvaluationAnswer.id)).where(
        EvaluationAnswer.seminar_id == seminar.id)) or 0
    portal = tokens.external_url("manage.attendance", seminar_id=seminar.id)
    return Composed(
        subject=_("Attendance: %(title)s", title=seminar.title),
        paragraphs=[
            _("Hello %(name)s,", name=user.name) if user.name else _("Hello,"),
            _("The follow-up mails for the seminar below are on their way."),
            _("Attended: %(attended)d. Absent: %(absent)d (of %(total)d with a seat).",
              attended=result.attended, absent=result.absent, total=len(result.rows)),
            ngettext("%(num)d participant matched none of the registrations.",
                     "%(num)d participants matched none of the registrations.", len(result.guests))
            if result.guests else "",
            ngettext("%(num)d evaluation answered so far.", "%(num)d evaluations answered so far.", answers),
            _("Who came, and what they thought, is in the portal: %(link)s", link=portal),
        ],
        action=(_("Open the attendance list"), portal),
        details=_details(seminar),
        footer=_("You receive this mail because you organise or host this seminar."),
    )
