"""The mail family of jobs: compose at send time, send through the relay, record each answer.

The registrations and seminars of a claimed batch are read in one query; then each message is
composed, flattened and handed to the process's relay sender (relay/sender.py) at once, so the
relay's connections work while the next one is composed. When the sender's queue runs low while
the batch drains, the next due mail is claimed into the batch and handed over the same way
(`_Batch.keep_fed`), so the relay never waits for our claim. Answers come back per message:
- accepted: recorded as done, several together in one transaction, never left unrecorded while
  the worker waits for anything (docs/DELIVERY.md);
- "slow down" (the relay's pace) or "quota used up": the job waits (deferred: not an attempt,
  never failed, no growing backoff for one message while its neighbours go on);
- a temporary refusal of this message: retried with the usual backoff; a permanent one: failed.

With MAIL_SERVER unset every message is written to instance/mail/ instead (transport.py).
The sender touches neither the database nor the session's objects: it gets bytes and gives back
answers.
"""
from __future__ import annotations

import atexit
import logging
import math
import os
import queue
import socket
import threading
import time
from dataclasses import replace
from email.generator import BytesGenerator
from email.utils import parseaddr
from io import BytesIO

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..jobs import kinds, runner
from ..jobs.outcome import Done
from ..jobs.recorder import Recorder, outcome_connection
from ..models import Job, Registration
from . import fastmime, rendering
from .fastmime import message_bytes
from .mail_schedule import budget
from .mails import build_message, compose
from .relay.budget import Budget
from .relay.messages import Kind, Outgoing, Result
from .relay.sender import RelaySender
from .relay.smtp import connector
from .transport import FileTransport

log = logging.getLogger("seminar.worker")

GROUP, GROUP_SECONDS = 16, 0.005  # accepted mails recorded together: at most this many, this long
ANSWER_WAIT = 1.0  # seconds between looks at the clock while waiting for answers
STOP_WAIT = 10.0   # a batch stopped midway waits this long for the messages on the wire
OVERDUE_GRACE = 60.0  # beyond the sender's own limit, before the batch stops waiting for a message
CLAIM_SECONDS = 5.0  # a claim takes no more bulk mail than the relay takes in this long
LOW_SECONDS = 1.0  # the next mail is claimed once the sender has less than this long's worth queued
SENDER_KEY = "seminar.relay_sender"
_SENDER_LOCK = threading.Lock()


def relay_sender(app: Flask) -> RelaySender:
    """The process's sender (its connections outlive the batches), made on first use."""
    sender = app.extensions.get(SENDER_KEY)
    if sender is None:
        with _SENDER_LOCK:
            sender = app.extensions.get(SENDER_KEY)
            if sender is None:
                budget = Budget.from_config(app.config, db.engine)
                holder = f"{socket.gethostname()}:{os.getpid()}"
                sender = app.extensions[SENDER_KEY] = RelaySender(budget, connector(app.config), holder)
                # The worker leaving (SIGTERM after its batch, `worker --once`): its connections
                # are closed and their slots given back now, not when their leases run out.
                atexit.register(sender.close, 5.0)
    return sender


def bulk_mail_cap() -> int | None:
    """Bulk mail one claim may take (runner.BULK_CAPS): what the relay takes in CLAIM_SECONDS at
    the pace known now; none while a quota is used up; no cap while no pace is known."""
    if not current_app.config.get("MAIL_SERVER"):
        return None
    relay = budget()
    try:
        status = relay.status()
    except Exception:  # noqa: BLE001 - e.g. Redis away: the claim (platform calls, a person's mail) goes on
        log.exception("could not read the mail relay's pace; bulk mail claimed a little at a time")
        return max(1, current_app.config["MAIL_MAX_CONNECTIONS"])
    if status.held:
        return 0
    rate = status.rate or status.quota_rate
    if not rate:
        return None
    return max(status.connections, math.ceil(rate * CLAIM_SECONDS))


runner.BULK_CAPS[kinds.MAIL_BATCH] = bulk_mail_cap


def close_relay_sender(app: Flask) -> None:
    sender = app.extensions.pop(SENDER_KEY, None)
    if sender is not None:
        sender.close()


class _Prepared:
    __slots__ = ("address", "data", "kept", "international", "note", "error")

    def __init__(self, address=None, data=None, kept=None, international=False, note=None, error=None):
        self.address, self.data, self.kept = address, data, kept
        self.international, self.note, self.error = international, note, error


def _preload(jobs: list[Job]) -> list[Registration]:
    """Registrations (with their seminars) of the whole batch in one query, so composing the
    messages reads nothing more from the database. (Keep the list: the session holds its objects
    only as long as someone else does.)"""
    ids = {job.registration_id for job in jobs if job.registration_id is not None}
    if not ids:
        return []
    return list(db.session.scalars(select(Registration).where(Registration.id.in_(ids))
                                   .options(selectinload(Registration.seminar))))


def flatten(msg) -> tuple[bytes, bool]:
    """The bytes to send (CRLF line ends) and whether they need SMTPUTF8 (an address that is not
    ASCII), as smtplib's send_message decides it."""
    international = any(not (msg.get(name) or "").isascii() for name in ("From", "To"))
    out = BytesIO()
    BytesGenerator(out, policy=msg.policy.clone(linesep="\r\n", utf8=international)).flatten(msg)
    return out.getvalue(), international


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
        data, international = flatten(msg)
        kept = None if composed.confidential else _stored_text(composed, msg, data)
        return _Prepared(address=address, data=data, kept=kept, international=international)
    except Exception as exc:  # noqa: BLE001 - recorded as a retry of the job (logged)
        return _Prepared(error=exc)


def _stored_text(composed, msg, data: bytes) -> str:
    """The message as kept for the outbox view; attachments (a certificate PDF, made again from its
    record when needed) are left out, so the outbox does not keep a PDF per attendee."""
    if not composed.attachments:
        return data.decode("utf-8", "replace").replace("\r\n", "\n")
    return build_message(replace(composed, attachments=[]), *composed.to, 0,
                         date=msg["Date"], message_id=msg["Message-ID"]).as_string()


class _Accepted:
    """Jobs whose mail the relay accepted, not yet recorded as done. Recorded together, in one
    transaction, before the worker waits for anything, before any other outcome, and at the
    latest once GROUP of them are waiting or the oldest has waited GROUP_SECONDS."""

    def __init__(self, recorder: Recorder, connection):
        self.recorder, self.connection = recorder, connection
        self.results: list[tuple[Job, Done]] = []
        self.since = 0.0

    def add(self, job: Job, result: Done) -> None:
        if len(self.results) >= GROUP:
            self.record()
        if not self.results:
            self.since = time.monotonic()
        self.results.append((job, result))

    def due(self) -> bool:
        return bool(self.results) and (len(self.results) >= GROUP or time.monotonic() - self.since >= GROUP_SECONDS)

    def record(self) -> None:
        results, self.results = self.results, []
        self.recorder.done_together(results, self.connection)


class _Batch:
    """One claimed batch of mail jobs on its way through the sender."""

    def __init__(self, recorder: Recorder, sender: RelaySender):
        self.recorder, self.sender = recorder, sender
        self.connection = outcome_connection()
        self.accepted = _Accepted(recorder, self.connection)
        self.replies: queue.Queue[Result] = queue.Queue()
        self.waiting: dict[int, tuple[Job, str, str | None]] = {}  # id(item) -> job, recipient, kept
        self.handed: dict[int, float] = {}  # id(item) -> when it was handed to the sender
        self.envelope_sender = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]
        self.chaining = True  # claiming the next mail into this batch while it drains
        self.loaded: list = []  # the registrations read for composing (see `_preload`)

    def hand_over_all(self, jobs: list[Job]) -> None:
        self.loaded += _preload(jobs)
        for job in jobs:
            self.hand_over(job)
            self.take_answers(wait=False)

    def keep_fed(self) -> bool:
        """While all goes well, the next due mail is claimed into the batch once the sender has
        less than LOW_SECONDS' worth queued (at least two per connection), and handed over: the
        sender's queue never runs dry between batches. Returns whether it claimed any; after a
        claim that found nothing (or any answer but "accepted") the batch only drains."""
        if not self.chaining:
            return False
        interval = self.sender.budget.interval()
        low = max(2 * self.sender.max_threads, math.ceil(LOW_SECONDS / interval) if interval else 0)
        if self.sender.queued() >= low:
            return False
        self.accepted.record()  # never wait (here: for the claim) with accepted mail unrecorded
        jobs = self.recorder.batch.claim_next([kind.name for kind in kinds.mails()])
        if not jobs:
            self.chaining = False
            return False
        self.hand_over_all(jobs)
        return True

    def hand_over(self, job: Job) -> None:
        p = _prepare(job)
        if p.error is not None:
            self.accepted.record()
            log.error("job %s (%s) could not be composed: %s", self.recorder.job_id(job), job.kind,
                      p.error.__class__.__name__, exc_info=p.error)
            if isinstance(p.error, (ValueError, UnicodeError)):
                # What is stored cannot make a message (e.g. an address from before the form's
                # checks): trying again would only fail again. A clear failure in the outbox, for
                # this one mail only; its text may quote the address.
                self.recorder.failed(job, f"could not be built from the stored details "
                                          f"({p.error.__class__.__name__})")
            else:
                self.recorder.retry(job, f"{p.error.__class__.__name__}: {p.error}")
            return
        if p.note is not None:
            self.accepted.add(job, Done(note=p.note))
            return
        item = Outgoing(key=job, sender=self.envelope_sender, recipient=p.address, data=p.data,
                        lane=job.lane, smtputf8=p.international, reply=self.replies)
        self.waiting[id(item)] = (job, p.address, p.kept)
        self.handed[id(item)] = time.monotonic()
        self.sender.submit([item])

    def take_answers(self, wait: bool) -> None:
        """Record every answer in so far; with `wait`, wait for at least one (or a while)."""
        if wait:
            self.accepted.record()  # never wait with accepted mail unrecorded
            try:
                self._answer(self.replies.get(timeout=ANSWER_WAIT))
            except queue.Empty:
                self.give_up_on_overdue()
                return
        while True:
            try:
                self._answer(self.replies.get_nowait())
            except queue.Empty:
                break
        if self.accepted.due():
            self.accepted.record()

    def _answer(self, result: Result) -> None:
        found = self.waiting.pop(id(result.item), None)
        if found is None:
            return  # given up on already (see `give_up_on_overdue`)
        job, recipient, kept = found
        if result.kind is Kind.ACCEPTED:
            self.accepted.add(job, Done(fields={"recipient": recipient, "message": kept}))
            return
        self.chaining = False  # trouble: the batch drains, the worker's loop (and its pauses) goes on
        self.accepted.record()
        recorder = self.recorder
        after = max(1.0, (result.until or 0) - time.time())
        if result.kind is Kind.HELD:
            recorder.defer(job, f"held: the relay's quota is used up ({result.reason})", after)
        elif result.kind is Kind.WAIT:
            recorder.defer(job, f"waiting for the relay: {result.reason}", after)
        elif result.kind is Kind.UNTRIED:
            recorder.release([job], f"not tried: {result.reason}", kinds.BACKOFF.delay(1))
        elif result.kind is Kind.PERMANENT:
            recorder.failed(job, result.reason)
        else:
            recorder.retry(job, result.reason)

    def give_up_on_overdue(self) -> None:
        """A message the sender has not answered for long after it should have (it answers for
        each within MAX_STAY): handed back to the queue, so the batch never waits for ever."""
        overdue = time.monotonic() - self.sender.max_stay - OVERDUE_GRACE
        for key, (job, _, _) in list(self.waiting.items()):
            if self.handed[key] < overdue:
                del self.waiting[key]
                log.error("job %s (%s): no answer from the relay sender; handed back", self.recorder.job_id(job), job.kind)
                self.recorder.release([job], "not answered by the relay sender in time",
                                      kinds.BACKOFF.delay(1))

    def stop(self) -> None:
        """Leaving in the middle (an error, Ctrl-C): messages not yet started are withdrawn, the
        ones on the wire are waited for (a little), and what the relay accepted is still
        recorded, so that it is not sent again."""
        self.sender.withdraw("the batch stopped", self.replies)
        deadline = time.monotonic() + STOP_WAIT
        try:
            while self.waiting and (left := deadline - time.monotonic()) > 0:
                try:
                    result = self.replies.get(timeout=left)
                except queue.Empty:
                    break
                job, recipient, kept = self.waiting.pop(id(result.item), (None, None, None))
                if job is not None and result.kind is Kind.ACCEPTED:
                    self.accepted.add(job, Done(fields={"recipient": recipient, "message": kept}))
            self.accepted.record()
        except Exception:  # noqa: BLE001 - e.g. the database is what failed: the lease covers it
            log.exception("could not record the mails accepted before the batch stopped")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _to_files(jobs: list[Job], recorder: Recorder) -> None:
    """MAIL_SERVER unset: each message written to instance/mail/ (and recorded) in turn."""
    transport = FileTransport(current_app.config["MAIL_DIR"])

    def write(job: Job) -> Done | str:
        p = _prepare(job)
        if p.error is not None:
            raise p.error
        if p.note is not None:
            return p.note
        transport.send_bytes(p.data, recorder.job_id(job))
        return Done(fields={"recipient": p.address, "message": p.kept})
    recorder.run_each(jobs, write)


def deliver(jobs: list[Job], recorder: Recorder) -> None:
    """Run a batch of mail jobs (every mail kind's batch runner, jobs/kinds.py)."""
    if not current_app.config.get("MAIL_SERVER"):
        loaded = _preload(jobs)
        try:
            return _to_files(jobs, recorder)
        finally:
            rendering.forget()
            fastmime.forget()
            del loaded
    batch = _Batch(recorder, relay_sender(current_app._get_current_object()))
    try:
        batch.hand_over_all(jobs)
        while batch.waiting:
            if not batch.keep_fed():
                batch.take_answers(wait=True)
        batch.accepted.record()
    except BaseException:
        batch.stop()
        raise
    finally:
        batch.close()
        rendering.forget()
        fastmime.forget()
