"""The mail family of jobs: compose at send time, send over one connection per batch.

The registrations and seminars of a claimed batch are read in one query; then two things happen
side by side. The worker's own thread composes each message from that data and flattens it
(shared parts once, see fastmime and rendering), and records outcomes; a sender thread takes the
composed messages in order and hands them to the SMTP server over one connection. So the worker
composes the next message while the server is still answering the previous one, instead of
waiting for it.

Whatever the server has accepted is recorded as done in the worker's next commit: the worker
thread commits as soon as answers come back, all that came back together in one transaction, and
never waits for the sender with accepted mail unrecorded (docs/DELIVERY.md). The sender touches
neither the database nor the session's objects: it gets bytes and gives back answers.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Job, Registration
from . import fastmime, rendering
from .fastmime import message_bytes
from .mails import build_message, compose
from .transport import PermanentFailure, TemporaryFailure, open_transport
from ..jobs.outcome import Done, Fail, Retry
from ..jobs.runner import Recorder, backoff, outcome_connection

log = logging.getLogger("seminar.worker")

# Composed messages go to the sender a few at a time (each hand-over can wake a thread), and at
# most AHEAD wait for it: enough to keep it busy, no more.
CHUNK, AHEAD = 4, 8
GROUP, GROUP_SECONDS = 16, 0.005  # accepted mails recorded together: at most this many, this long
UNTRIED = object()  # the sender's answer for a message it did not try (the connection was gone)


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
    except Exception as exc:  # noqa: BLE001 - recorded as a retry of the job (logged)
        return _Prepared(error=exc)


class _Sender(threading.Thread):
    """Sends composed messages in order over one transport and answers each: None (accepted),
    an exception (Fail or Retry, as the worker records them), or UNTRIED once the connection is
    gone (the rest of the batch is handed back untried, one connection attempt per batch)."""

    def __init__(self, app):
        super().__init__(name="mail-sender", daemon=True)
        self.app = app
        self.todo: queue.Queue = queue.Queue()
        self.answers: queue.Queue = queue.Queue()
        # Set when the worker cannot record outcomes any more (e.g. the database went away):
        # nothing more is sent, as it could not be recorded as done.
        self.halt = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            broken = False
            try:
                with open_transport() as transport:
                    while (chunk := self.todo.get()) is not None:
                        for job, p, job_id in chunk:
                            if broken or self.halt.is_set():
                                self.answers.put((job, UNTRIED))
                                continue
                            answer = self._send(transport, p, job_id)
                            if isinstance(answer, Retry) and answer.release_rest:
                                broken = True
                            self.answers.put((job, answer))
            except BaseException as exc:  # noqa: BLE001 - e.g. closing the connection failed
                log.warning("mail sender stopped: %s", exc.__class__.__name__)
            finally:
                # The worker never waits in vain: it learns that nothing more will come back.
                self.answers.put((None, None))

    @staticmethod
    def _send(transport, p: _Prepared, job_id: int):
        try:
            if p.data is not None:
                transport.send_bytes(p.data, p.address, job_id)
            else:
                transport.send(p.msg, job_id)
        except PermanentFailure as exc:
            return Fail(str(exc))
        except TemporaryFailure as exc:
            # The connection is gone: hand the rest of the batch back rather than hammering.
            return Retry(str(exc), release_rest=transport_broken(transport))
        except Exception as exc:  # noqa: BLE001 - a bug or an unexpected answer: retried
            return exc
        return None


class _Accepted:
    """Jobs whose mail the server accepted, not yet recorded as done. Recorded together, in one
    transaction, before the worker waits for anything, before any other outcome, and at the
    latest once GROUP of them are waiting or the oldest has waited GROUP_SECONDS."""

    def __init__(self, outcome: Recorder, connection):
        self.outcome, self.connection = outcome, connection
        self.results: list[tuple[Job, Done]] = []
        self.since = 0.0

    def add(self, job: Job, result: Done) -> None:
        if len(self.results) >= GROUP:
            self.record()  # never more than GROUP accepted and unrecorded
        if not self.results:
            self.since = time.monotonic()
        self.results.append((job, result))

    def due(self) -> bool:
        return bool(self.results) and (len(self.results) >= GROUP or time.monotonic() - self.since >= GROUP_SECONDS)

    def record(self) -> None:
        results, self.results = self.results, []
        self.outcome.done_together(results, self.connection)


def deliver(jobs: list[Job], outcome: Recorder) -> None:
    """Every mail kind's batch runner (kinds.py): compose and send a claimed batch of mails."""
    loaded = _preload(jobs)
    sender = _Sender(current_app._get_current_object())
    connection = outcome_connection()
    accepted = _Accepted(outcome, connection)
    sender.start()
    handed = {}  # id(job) -> (job, recipient, what is kept): with the sender, not answered yet
    rest = list(reversed(jobs))
    stopped = None  # why the rest of the batch is handed back untried
    try:
        while rest or handed:
            wait = bool(handed) and (not rest or stopped is not None or len(handed) >= AHEAD)
            if wait:
                accepted.record()  # never wait with accepted mail unrecorded
            for job, answer in _answers(sender, wait):
                if job is None:  # the sender stopped: nothing more will come back
                    stopped = stopped or "the mail sender stopped"
                    accepted.record()
                    outcome.release([other for other, _, _ in handed.values()], f"not tried: {stopped}", backoff(1))
                    handed.clear()
                    break
                _, recipient, kept = handed.pop(id(job))
                if answer is None:
                    accepted.add(job, Done(fields={"recipient": recipient, "message": kept}))
                    continue
                accepted.record()
                if answer is UNTRIED:
                    outcome.release([job], f"not tried: {stopped}", backoff(1))
                elif isinstance(answer, Fail):
                    outcome.failed(job, str(answer))
                elif isinstance(answer, Retry):
                    outcome.retry(job, str(answer), answer.after)
                    if answer.release_rest:
                        stopped = stopped or str(answer)
                else:
                    log.error("job %s (%s) raised %s", outcome.job_id(job), job.kind, answer.__class__.__name__)
                    outcome.retry(job, f"{answer.__class__.__name__}: {answer}")
            if accepted.due():
                accepted.record()
            if rest and stopped is not None:
                accepted.record()
                outcome.release(list(reversed(rest)), f"not tried: {stopped}", backoff(1))
                rest = []
            chunk = []
            while rest and len(handed) < AHEAD and len(chunk) < CHUNK:
                job = rest.pop()
                p = _prepare(job)
                if p.error is not None:
                    accepted.record()
                    log.error("job %s (%s) could not be composed: %s", outcome.job_id(job), job.kind,
                              p.error.__class__.__name__, exc_info=p.error)
                    outcome.retry(job, f"{p.error.__class__.__name__}: {p.error}")
                elif p.note is not None:
                    accepted.add(job, Done(note=p.note))
                else:
                    handed[id(job)] = (job, p.address, p.kept)
                    chunk.append((job, p, outcome.job_id(job)))
                if chunk and len(handed) == len(chunk):
                    break  # the sender has nothing else to do: give it this one at once
            if chunk:
                sender.todo.put(chunk)
        accepted.record()
    except BaseException:
        sender.halt.set()
        _record_accepted(sender, handed, accepted)
        raise
    finally:
        sender.todo.put(None)
        sender.join(60)
        rendering.forget()
        fastmime.forget()
        if connection is not None:
            connection.close()
        del loaded


def _record_accepted(sender: _Sender, handed: dict, accepted: _Accepted) -> None:
    """Leaving in the middle of a batch (an error, Ctrl-C): what the server accepted is still
    recorded, so that it is not sent again after the lease."""
    sender.todo.put(None)
    sender.join(10)
    try:
        for job, answer in _answers(sender, wait=False):
            if job is not None and answer is None and id(job) in handed:
                _, recipient, kept = handed.pop(id(job))
                accepted.add(job, Done(fields={"recipient": recipient, "message": kept}))
        accepted.record()
    except Exception:  # noqa: BLE001 - e.g. the database is what failed: the lease covers it
        log.exception("could not record the mails accepted before the batch stopped")


def _answers(sender: _Sender, wait: bool) -> list:
    """Every answer the sender has given so far; with `wait`, at least one."""
    answers = []
    try:
        if wait:
            answers.append(sender.answers.get())
        while True:
            answers.append(sender.answers.get_nowait())
    except queue.Empty:
        pass
    return answers


def transport_broken(transport) -> bool:
    return getattr(transport, "_connection", "file") is None
