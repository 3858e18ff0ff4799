"""The mail family of jobs: compose at send time, send over one connection per batch."""
from __future__ import annotations

from ..models import Job
from .mails import build_message, compose
from .transport import PermanentFailure, TemporaryFailure, open_transport
from .worker import Done, Fail, Outcome, Retry, handler


@handler("mail")
def deliver(jobs: list[Job], outcome: Outcome) -> None:
    with open_transport() as transport:

        def send(job: Job) -> Done | str:
            composed = compose(job)
            if composed is None:
                return "not sent: no longer applies"
            name, address = composed.to
            msg = build_message(composed, name, address, job.id)
            try:
                transport.send(msg, job.id)
            except PermanentFailure as exc:
                raise Fail(str(exc)) from exc
            except TemporaryFailure as exc:
                # The connection is gone: hand the rest of the batch back rather than hammering.
                raise Retry(str(exc), release_rest=transport_broken(transport)) from exc
            kept = None if composed.confidential else msg.as_string()
            return Done(fields={"recipient": address, "message": kept})

        outcome.run_each(jobs, send)


def transport_broken(transport) -> bool:
    return getattr(transport, "_connection", "file") is None
