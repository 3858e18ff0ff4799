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
from dataclasses import replace

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Job, Registration
from . import fastmime, rendering
from .fastmime import message_bytes
from .mails import build_message, compose
from .transport import PermanentFailure, TemporaryFailure, open_transport
from ..jobs import kinds
from ..jobs.outcome import Done, Fail, Retry
from ..jobs.recorder import Recorder, outcome_connection

log = logging.getLogger("seminar.worker")

# Composed messages go to the sender a few at a time (each hand-over can wake a thread), and at
# most AHEAD wait for it: enough to keep it busy, no more.
CHUNK, AHEAD = 4, 8
GROUP, GROUP_SECONDS = 16, 0.005  # accepted mails recorded together: at most this many, this long
UNTRIED = object()  # the sender's answer for a message it did not try (the connection was gone)


class _Prepared:
    """A job's mail, composed: its bytes (`data`, the fast way) or message (`msg`) for `address`,
    and the text stored with the job for the outbox view (None when it holds a sign-in link); or
    a `note` why it is not sent, or the `error` composing it raised."""

    __slots__ = ("address", "data", "msg", "stored_text", "note", "error")

    def __init__(self, address=None, data=None, msg=None, stored_text=None, note=None, error=None):
        self.address, self.data, self.msg, self.stored_text = address, data, msg, stored_text
        self.note, self.error = note, error


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
            return _Prepared(address=address, data=data, stored_text=None if composed.confidential else text)
        msg = build_message(composed, name, address, job.id)
        return _Prepared(address=address, msg=msg, stored_text=None if composed.confidential else _kept(composed, msg))
    except Exception as exc:  # noqa: BLE001 - recorded as a retry of the job (logged)
        return _Prepared(error=exc)


def _kept(composed, msg) -> str:
    """The message as kept for the outbox view; attachments (a certificate PDF, made again from its
    record when needed) are left out, so the outbox does not keep a PDF per attendee."""
    if not composed.attachments:
        return msg.as_string()
    return build_message(replace(composed, attachments=[]), *composed.to, 0,
                         date=msg["Date"], message_id=msg["Message-ID"]).as_string()


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
                        for job, prepared, job_id in chunk:
                            if broken or self.halt.is_set():
                                self.answers.put((job, UNTRIED))
                                continue
                            answer = self._send(transport, prepared, job_id)
                            if isinstance(answer, Retry) and answer.release_rest:
                                broken = True
                            self.answers.put((job, answer))
            except BaseException as exc:  # noqa: BLE001 - e.g. closing the connection failed
                log.warning("mail sender stopped: %s", exc.__class__.__name__)
            finally:
                # The worker never waits in vain: it learns that nothing more will come back.
                self.answers.put((None, None))

    @staticmethod
    def _send(transport, prepared: _Prepared, job_id: int):
        try:
            if prepared.data is not None:
                transport.send_bytes(prepared.data, prepared.address, job_id)
            else:
                transport.send(prepared.msg, job_id)
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

    def __init__(self, recorder: Recorder, connection):
        self.recorder, self.connection = recorder, connection
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
        self.recorder.done_together(results, self.connection)


def deliver(jobs: list[Job], recorder: Recorder) -> None:
    """Every mail kind's batch runner (kinds.py): compose and send a claimed batch of mails."""
    loaded = _preload(jobs)
    sender = _Sender(current_app._get_current_object())
    connection = outcome_connection()
    batch = _MailBatch(jobs, recorder, sender, _Accepted(recorder, connection))
    sender.start()
    try:
        batch.run()
    except BaseException:
        sender.halt.set()
        batch.record_what_was_accepted()
        raise
    finally:
        sender.todo.put(None)
        sender.join(60)
        rendering.forget()
        fastmime.forget()
        if connection is not None:
            connection.close()
        del loaded


class _MailBatch:
    """A claimed batch of mails on its way: composed here, a few at a time, while the sender
    thread sends the ones before; each answer recorded as it comes back."""

    def __init__(self, jobs: list[Job], recorder: Recorder, sender: _Sender, accepted: _Accepted):
        self.recorder, self.sender, self.accepted = recorder, sender, accepted
        self.to_compose = list(reversed(jobs))  # taken from the end: in the order claimed
        # With the sender, not answered yet: id(job) -> (job, address, the text stored when sent).
        self.at_sender: dict[int, tuple[Job, str, str | None]] = {}
        self.stopped: str | None = None  # why the rest of the batch is handed back untried

    def run(self) -> None:
        while self.to_compose or self.at_sender:
            self.take_answers(wait=self.must_wait())
            if self.accepted.due():
                self.accepted.record()
            if self.stopped is not None:
                self.hand_back(self.to_compose[::-1])
                self.to_compose = []
            self.hand_over_next()
        self.accepted.record()

    def must_wait(self) -> bool:
        """Wait for an answer when nothing else is to be done: all composed, the sender has
        enough to do, or the batch stopped."""
        return bool(self.at_sender) and (not self.to_compose or self.stopped is not None
                                         or len(self.at_sender) >= AHEAD)

    def take_answers(self, wait: bool) -> None:
        if wait:
            self.accepted.record()  # never wait with accepted mail unrecorded
        for job, answer in _answers(self.sender, wait):
            if job is None:  # the sender stopped: nothing more will come back
                self.stopped = self.stopped or "the mail sender stopped"
                self.hand_back([waiting for waiting, _, _ in self.at_sender.values()])
                self.at_sender.clear()
                return
            self.record_answer(job, answer)

    def record_answer(self, job: Job, answer) -> None:
        _, address, stored_text = self.at_sender.pop(id(job))
        if answer is None:
            self.accepted.add(job, Done(fields={"recipient": address, "message": stored_text}))
            return
        self.accepted.record()  # outcomes in the order the server gave them
        if answer is UNTRIED:
            self.recorder.release([job], f"not tried: {self.stopped}", kinds.BACKOFF.delay(1))
        elif isinstance(answer, Fail):
            self.recorder.failed(job, str(answer))
        elif isinstance(answer, Retry):
            self.recorder.retry(job, str(answer), answer.after)
            if answer.release_rest:
                self.stopped = self.stopped or str(answer)
        else:
            log.error("job %s (%s) raised %s", self.recorder.job_id(job), job.kind, answer.__class__.__name__)
            self.recorder.retry(job, f"{answer.__class__.__name__}: {answer}")

    def hand_back(self, jobs: list[Job]) -> None:
        if jobs:
            self.accepted.record()
            self.recorder.release(jobs, f"not tried: {self.stopped}", kinds.BACKOFF.delay(1))

    def hand_over_next(self) -> None:
        """Compose the next few mails and give them to the sender (at once, when it is idle)."""
        chunk = []
        while self.to_compose and len(self.at_sender) < AHEAD and len(chunk) < CHUNK:
            job = self.to_compose.pop()
            prepared = _prepare(job)
            if prepared.error is not None:
                self.accepted.record()
                log.error("job %s (%s) could not be composed: %s", self.recorder.job_id(job), job.kind,
                          prepared.error.__class__.__name__, exc_info=prepared.error)
                if isinstance(prepared.error, (ValueError, UnicodeError)):
                    # What is stored cannot make a message (e.g. an address from before the
                    # form's checks): trying again would only fail again. A clear failure in the
                    # outbox, for this one mail only; its text may quote the address.
                    self.recorder.failed(job, f"could not be built from the stored details "
                                              f"({prepared.error.__class__.__name__})")
                else:
                    self.recorder.retry(job, f"{prepared.error.__class__.__name__}: {prepared.error}")
            elif prepared.note is not None:
                self.accepted.add(job, Done(note=prepared.note))
            else:
                self.at_sender[id(job)] = (job, prepared.address, prepared.stored_text)
                chunk.append((job, prepared, self.recorder.job_id(job)))
            if chunk and len(self.at_sender) == len(chunk):
                break  # the sender has nothing else to do: give it this one at once
        if chunk:
            self.sender.todo.put(chunk)

    def record_what_was_accepted(self) -> None:
        """Leaving in the middle of a batch (an error, Ctrl-C): what the server accepted is still
        recorded, so that it is not sent again after the lease."""
        self.sender.todo.put(None)
        self.sender.join(10)
        try:
            for job, answer in _answers(self.sender, wait=False):
                if job is not None and answer is None and id(job) in self.at_sender:
                    _, address, stored_text = self.at_sender.pop(id(job))
                    self.accepted.add(job, Done(fields={"recipient": address, "message": stored_text}))
            self.accepted.record()
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
