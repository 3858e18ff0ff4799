"""Sending over up to MAIL_MAX_CONNECTIONS connections at once, each reused for many messages.

A `RelaySender` lives as long as its worker process. Callers `submit` messages (already
flattened to bytes) and read a `Result` for each from `results`. Each of its threads:
takes a connection slot from the shared budget (all workers together hold at most
MAIL_MAX_CONNECTIONS), connects, and then, message after message, reserves the next start from
the shared pace, waits for it, takes the most urgent message (interactive before bulk, bulk
keeping a share) and sends it. An idle connection is closed and its slot given back soon, so
another worker can use it.

What the relay answers (answers.py) decides what happens to the message:
- accepted → Result(ACCEPTED);
- throttled (454, 432, 421, …) → the controller slows everyone down and the message goes back to
  the front of its queue, to go out at the slower pace (after a few such answers for the same
  message it is handed back as Result(WAIT): the job waits, it is not failed);
- quota used up → Result(HELD), and bulk mail still queued follows without being tried;
- connection lost → the message goes back to the queue (another connection, another try);
- temporary (e.g. 451) / permanent (550) for this message → Result(TEMPORARY) / Result(PERMANENT).
"""
from __future__ import annotations

import logging
import random
import smtplib
import threading
import time
import weakref
from queue import Queue
from typing import Any, Callable

from . import smtp
from ..lanes import BULK, INTERACTIVE
from .answers import Answer, Meaning, classify_exception
from .budget import Budget, Plan
from .messages import Kind, Lanes, Outgoing, Result

log = logging.getLogger("seminar.worker")

IDLE_CLOSE = 1.0      # seconds a connection waits for work before its slot is given back
IDLE_EXIT = 10.0      # seconds a thread without a connection waits for work before it ends
SLOT_WAIT = 0.25      # seconds between tries for a connection slot while all are taken
SLOT_TROUBLE = 5.0    # seconds no slot could be read before what waits is handed back untried
MAX_REQUEUES = 20     # throttled/disconnected this often: hand back to the job queue
MAX_STAY = 120.0      # seconds a message may stay here (well inside the job's claim lease)
SHORT_WAIT = 5.0      # a pace wait up to this long is waited out; longer ones go back as WAIT
# A message is chosen and its MAIL FROM and RCPT TO sent this long before its start (measured
# per connection: a little more than what they took lately), so that the message itself, where
# the relay counts it, goes at the paced moment, whether the sender was ahead or behind.
LEAD_FIRST, LEAD_MIN, LEAD_MAX = 0.1, 0.005, 1.0
SLOW_PACE = 1.0       # seconds between starts from which one connection carries the pace


class _Held:
    """A connection slot a thread holds, and how long its MAIL FROM and RCPT TO take."""

    def __init__(self, slot: int, name: str, now: float):
        self.slot, self.name, self.renewed = slot, name, now
        self.lead = LEAD_FIRST

    def measured(self, seconds: float) -> None:
        self.lead = min(LEAD_MAX, max(LEAD_MIN, 0.7 * self.lead + 0.3 * (1.1 * seconds + 0.005)))


class RelaySender:
    def __init__(self, budget: Budget, connect: Callable[[], smtplib.SMTP], holder: str,
                 threads: int | None = None, idle_close: float = IDLE_CLOSE, max_stay: float = MAX_STAY):
        self.budget = budget
        self.connect = connect
        self.holder = holder
        self.idle_close = idle_close
        self.max_stay = max_stay
        self.results: Queue[Result] = Queue()
        self._lanes = Lanes()
        self._cond = threading.Condition()  # the queue changed (work came, a thread ended), or stopping
        self._stopping = False
        self._stopped = threading.Event()  # what a thread sleeping until its start wakes up for
        self.max_threads = threads or budget.max_connections
        self._threads: list[threading.Thread] = []
        self._started = 0
        self.connected = 0   # connections open now (this process)
        self._holding = 0    # threads holding (or taking) a connection slot
        self.peak = 0
        self._slot_trouble_since: float | None = None  # slots unreadable since (monotonic)
        # Batches (by their reply queue) that found the relay unreachable: the rest of their
        # messages go back untried, not one connection attempt each. A new batch tries again.
        self._down: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ outside
    def submit(self, items: list[Outgoing]) -> None:
        with self._cond:
            if self._stopping:
                for item in items:
                    self._put(Result(item, Kind.UNTRIED, reason="the sender stopped"))
                return
            down = [item for item in items if self._answers_to(item) in self._down]
            for item in down:
                self._put(Result(item, Kind.UNTRIED, reason=self._down[self._answers_to(item)]))
            items = [item for item in items if self._answers_to(item) not in self._down]
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.max_threads:  # threads come with work, go when idle
                self._started += 1
                thread = threading.Thread(target=self._run, name=f"relay-{self._started}", daemon=True)
                self._threads.append(thread)
                thread.start()
            deadline = time.monotonic() + self.max_stay
            for item in items:
                item.deadline = item.deadline or deadline
                (self._lanes.interactive if item.lane == INTERACTIVE else self._lanes.bulk).append(item)
            self._cond.notify_all()

    def queued(self) -> int:
        with self._cond:
            return len(self._lanes)

    def _answers_to(self, item: Outgoing) -> Queue:
        return item.reply if item.reply is not None else self.results

    def _put(self, result: Result) -> None:
        self._answers_to(result.item).put(result)

    def withdraw(self, reason: str, reply: Any = None) -> None:
        """Hand back the messages not yet started (those answered to `reply`, or all), e.g. when
        the worker cannot record outcomes."""
        with self._cond:
            items = []
            for lane in (self._lanes.interactive, self._lanes.bulk):
                keep = [item for item in lane if reply is not None and item.reply is not reply]
                items += [item for item in lane if reply is None or item.reply is reply]
                lane.clear()
                lane.extend(keep)
        for item in items:
            self._put(Result(item, Kind.UNTRIED, reason=reason))

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._stopped.set()
            self._cond.notify_all()
        self.withdraw("the sender stopped")
        for thread in list(self._threads):
            thread.join(timeout)

    # ------------------------------------------------------------------ threads
    def _wait(self, seconds: float) -> bool:
        """Sleep this long (less when stopping); False when stopping. Only stopping wakes it,
        not every message handed over (that would wake each sleeping thread once a message)."""
        return not self._stopped.wait(seconds) if seconds > 0 else not self._stopped.is_set()

    def _run(self) -> None:
        name = f"{self.holder}:{threading.current_thread().name}"
        while True:
            with self._cond:
                # A connection more only for messages the ones held already won't take at once:
                # a slot this process holds idle is one another worker can't use.
                more = lambda: self._stopping or (len(self._lanes) > self._holding  # noqa: E731
                                                  and self._holding < self._wanted())
                if not self._cond.wait_for(more, IDLE_EXIT) or self._stopping:
                    self._threads = [t for t in self._threads if t is not threading.current_thread()]
                    return
                self._holding += 1
            try:
                slot = self._take_slot(name)
                if slot is not None:
                    self._hold(slot, name)
            finally:
                with self._cond:
                    self._holding -= 1
                    self._cond.notify_all()

    def _wanted(self) -> int:
        """Connections worth holding: at a slow pace (a start every second or more) one carries
        it all, and more would only hold starts far ahead that a person's mail then waits
        behind."""
        return 1 if self.budget.interval() >= SLOW_PACE else self.max_threads

    def _hold(self, slot: int, name: str) -> None:
        try:
            self._serve(slot, name)
        except Exception:  # noqa: BLE001 - a bug here must not kill the thread (logged)
            log.exception("relay sender thread failed")
        finally:
            try:
                self.budget.release_connection(slot, name)
            except Exception:  # noqa: BLE001 - the lease expires by itself
                log.warning("could not give back a relay connection slot; its lease will expire")

    def _take_slot(self, name: str) -> int | None:
        try:
            slot = self.budget.take_connection(name)
            self._slot_trouble_since = None
        except Exception:  # noqa: BLE001 - e.g. the database or Redis briefly away
            log.warning("could not take a relay connection slot", exc_info=True)
            now = time.monotonic()
            self._slot_trouble_since = self._slot_trouble_since or now
            if now - self._slot_trouble_since >= SLOT_TROUBLE:
                self._hand_back_untried("the relay's shared connection slots cannot be read")
            slot = None
        if slot is None:
            self._wait(SLOT_WAIT * random.uniform(0.5, 1.5))
        return slot

    def _hand_back_untried(self, reason: str) -> None:
        """No slot could be taken for SLOT_TROUBLE (the shared state is away; a moment's trouble,
        e.g. a database connection refused once, is tried again): unless a connection of ours still
        works, what waits here goes back to the job queue untried (no attempt counted) instead of
        sitting out MAX_STAY while the worker's batch waits for it."""
        with self._cond:
            if self.connected:
                return
            items = list(self._lanes.interactive) + list(self._lanes.bulk)
            self._lanes.interactive.clear()
            self._lanes.bulk.clear()
        for item in items:
            self._put(Result(item, Kind.UNTRIED, reason=reason))

    def _serve(self, slot: int, name: str) -> None:
        """Hold one connection as long as there is work and the lease holds."""
        try:
            conn = self.connect()
        except Exception as exc:  # noqa: BLE001 - connection trouble, refusals at connect
            self._connect_failed(exc)
            return
        with self._cond:
            self.connected += 1
            self.peak = max(self.peak, self.connected)
            self._down.clear()
        held = _Held(slot, name, self.budget.clock())
        try:
            while self._serve_one(conn, held):
                pass
        finally:
            with self._cond:
                self.connected -= 1
            smtp.close(conn)

    def _connect_failed(self, exc: Exception) -> None:
        answer = classify_exception(exc)
        if answer.meaning in (Meaning.THROTTLED, Meaning.QUOTA):
            self._report(answer)
            self._wait(1.0)
            return
        # The relay cannot be reached (or refuses us). If no connection of ours works either, the
        # first message waiting counts it as a failed attempt and the rest go back untried, as
        # does whatever comes in the next moments: one try, not one per message.
        log.warning("cannot connect to the mail relay: %s", answer)
        reason = f"cannot connect to the mail relay: {answer}"
        with self._cond:
            if self.connected:
                items = []
            else:
                items = list(self._lanes.interactive) + list(self._lanes.bulk)
                for item in items:
                    self._down[self._answers_to(item)] = reason
                self._lanes.interactive.clear()
                self._lanes.bulk.clear()
        for n, item in enumerate(items):
            self._put(Result(item, Kind.TEMPORARY if n == 0 else Kind.UNTRIED, answer, reason=reason))
        self._wait(1.0)

    def _serve_one(self, conn: smtplib.SMTP, held: "_Held") -> bool:
        """One message over `conn`; False when the connection is to be closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._stopping or len(self._lanes) > 0, self.idle_close):
                return False  # idle: give the slot back
            if self._stopping:
                return False
            lane = self._lanes.next_lane()
        now = self.budget.clock()
        if now - held.renewed >= self.budget.lease / 3:
            if not self.budget.renew_connection(held.slot, held.name):
                return False  # the lease ran out (a long stall): it may be someone else's now
            held.renewed = now
        try:
            plan = self.budget.reserve(lane, held.lead)
        except Exception:  # noqa: BLE001 - the shared state is briefly unreachable: not the relay's fault
            log.warning("could not reserve a start with the relay budget", exc_info=True)
            self._wait(1.0)
            return True
        if plan.start is None:
            return self._not_now(plan, lane)
        if not self._wait(plan.start - held.lead - self.budget.clock()):
            return False
        with self._cond:
            item = self._lanes.pick(lane)
        if item is None:
            return True  # someone else took it meanwhile: the start is spent, no harm done
        if time.monotonic() > item.deadline:
            # Waited here long enough (the relay keeps saying "slow down"): back to the job
            # queue, well before the job's claim lease runs out.
            self._put(Result(item, Kind.WAIT, until=self.budget.clock() + 30.0,
                             reason="waited for the relay's pace"))
            return True
        try:
            return self._send(conn, item, plan, held)
        except BaseException:
            # A bug (or the process stopping) between picking the message and answering for it:
            # it goes back to the queue rather than being lost.
            with self._cond:
                self._lanes.put_back(item)
                self._cond.notify_all()
            raise

    def _until(self, start: float, held: "_Held") -> Callable[[], bool]:
        began = time.monotonic()

        def before_data() -> bool:
            held.measured(time.monotonic() - began)
            return self._wait(start - self.budget.clock())
        return before_data

    def _not_now(self, plan: Plan, lane: str) -> bool:
        now = self.budget.clock()
        if plan.held:
            # Quota used up: every bulk message queued here is held, without trying it.
            with self._cond:
                items = list(self._lanes.bulk)
                self._lanes.bulk.clear()
            for item in items:
                self._put(Result(item, Kind.HELD, until=plan.until, reason=plan.reason))
            return True
        if plan.until is not None and plan.until - now <= SHORT_WAIT:
            return self._wait(plan.until - now)
        with self._cond:
            queue = self._lanes.interactive if lane == INTERACTIVE else self._lanes.bulk
            items = list(queue)
            queue.clear()
        for item in items:
            self._put(Result(item, Kind.WAIT, until=plan.until, reason=plan.reason))
        return True

    def _send(self, conn: smtplib.SMTP, item: Outgoing, plan: Plan, held: "_Held") -> bool:
        options = ["SMTPUTF8", "BODY=8BITMIME"] if item.smtputf8 else []
        try:
            item.tried = True
            smtp.send(conn, item.sender, item.recipient, item.data, options, self._until(plan.start, held))
        except Exception as exc:  # noqa: BLE001 - every answer and connection trouble is classified
            return self._refused(item, classify_exception(exc), exc)
        self._put(Result(item, Kind.ACCEPTED))
        if plan.holding:
            self._report(None, item.lane)  # mail goes through again: the hold is over
        return True

    def _report(self, answer: Answer | None, lane: str = BULK) -> None:
        """Tell the controller; if the shared state can't be reached now, the message must not
        be lost over it (the next answer tells it again)."""
        try:
            self.budget.report(answer, lane)
        except Exception:  # noqa: BLE001 - e.g. the database briefly away
            log.warning("could not record the relay's answer in the shared state", exc_info=True)

    def _held_until(self) -> float:
        try:
            until = self.budget.status().held_until
        except Exception:  # noqa: BLE001 - as in _report
            until = None
        return until or self.budget.clock() + 3600.0

    def _refused(self, item: Outgoing, answer: Answer, exc: Exception) -> bool:
        """Returns whether the connection can go on."""
        keep = not answer.connection and not isinstance(exc, (OSError, smtplib.SMTPServerDisconnected))
        if answer.meaning is Meaning.THROTTLED or (answer.meaning is Meaning.TEMPORARY and answer.connection):
            if answer.meaning is Meaning.THROTTLED:
                self._report(answer, item.lane)
            item.requeued += 1
            if item.requeued > MAX_REQUEUES:
                self._put(Result(item, Kind.WAIT, answer, until=self.budget.clock() + 30.0,
                                        reason=str(answer)))
            else:
                with self._cond:
                    self._lanes.put_back(item)
                    self._cond.notify_all()
            return keep
        if answer.meaning is Meaning.QUOTA:
            self._report(answer, item.lane)
            until = self._held_until()
            self._put(Result(item, Kind.HELD, answer, until=until, reason=str(answer)))
            return keep
        kind = Kind.PERMANENT if answer.meaning is Meaning.PERMANENT else Kind.TEMPORARY
        self._put(Result(item, kind, answer, reason=str(answer)))
        return keep
