"""The mail family of jobs: compose at send time, send over one connection per batch.

A batch is prepared before the connection opens: the registrations and seminars of all its jobs
are read in one query each, every message is composed from that data and flattened (shared parts
once, see fastmime), and then the messages go out one after the other over one SMTP connection,
each job's outcome committed on its own right after the server accepted its message.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Job, Registration
from .fastmime import message_bytes
from .mails import build_message, compose
from .transport import PermanentFailure, TemporaryFailure, open_transport
from .worker import Done, Fail, Outcome, Retry, handler


class _Prepared:
    __slots__ = ("address", "data", "kept", "msg", "note", "error")

    def __init__(self, address=None, data=None, kept=None, msg=None, note=None, error=None):
        self.address, self.data, self.kept, self.msg, self.note, self.error = address, data, kept, msg, note, error


def _preload(jobs: list[Job]) -> list[Registration]:
    """Registrations (with their seminars) of the whole batch in one query, so composing the
    messages reads nothing more from the database. (Keep the list: the session holds its objects
    only as long as someone else does.)"""
    ids = {job.registration_id for job in jobs if job.registration_id is not None}
    if not ids:
        return []
    return list(db.session.scalars(select(Registration).where(Registration.id.in_(ids))
                                   .options(selectinload(Registration.seminar))))


def _prepare(job: Job) -> _Prepared:
    try:
        composed = compose(job)
        if composed is None:
            return _Prepared(note="not sent: no longer applies")
        name, address = composed.to
        fast = message_bytes(composed, name, address, job.id)
        if fast is not None:
            data, text = fast
            return _Prepared(address=address, data=data, kept=None if composed.confidential else text)
        msg = build_message(composed, name, address, job.id)
        return _Prepared(address=address, msg=msg, kept=None if composed.confidential else msg.as_string())
    except Exception as exc:  # noqa: BLE001 - raised again when the job runs (retried, logged)
        return _Prepared(error=exc)


@handler("mail")
def deliver(jobs: list[Job], outcome: Outcome) -> None:
    loaded = _preload(jobs)
    prepared = {id(job): _prepare(job) for job in jobs}
    del loaded
    with open_transport() as transport:

        def send(job: Job) -> Done | str:
            p = prepared.pop(id(job))
            if p.error is not None:
                raise p.error
            if p.note is not None:
                return p.note
            job_id = outcome.job_id(job)
            try:
                if p.data is not None:
                    transport.send_bytes(p.data, p.address, job_id)
                else:
                    transport.send(p.msg, job_id)
            except PermanentFailure as exc:
                raise Fail(str(exc)) from exc
            except TemporaryFailure as exc:
                # The connection is gone: hand the rest of the batch back rather than hammering.
                raise Retry(str(exc), release_rest=transport_broken(transport)) from exc
            return Done(fields={"recipient": p.address, "message": p.kept})

        outcome.run_each(jobs, send)


def transport_broken(transport) -> bool:
    return getattr(transport, "_connection", "file") is None
