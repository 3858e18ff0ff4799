"""Every kind of job, declared once: its name (stored in `job.kind`), the handler that does it, the
label organisers see in the outbox, how its intent key is built, its retry policy and its lane.

Queue one through its declaration, in the transaction that causes it:

    kinds.SEAT_CONFIRMED.enqueue(registration=reg, calendar="REQUEST")
    kinds.REMINDER.enqueue(registration=reg, due_at=due, hours=24)   # keyword extras: the payload

A key is a stable name for the intent, filled in from the job (`{registration}`, `{seminar}`: their
ids) and its payload. Two jobs with one key are never pending at once (a partial unique index on
pending jobs, procrastinate's queueing lock): asking again while one is pending returns that one,
which reads the data when it runs and so carries the change too. Asked again while one is claimed
(running on data read before the change), a new job is queued under the key, so a third ask finds
it. When the runner hands a job back to pending (retry, defer, release) and another pending job
holds its key by then, the handed-back one is closed as superseded: the pending one does the same
intent on newer data. With `once=True` the key holds for ever: a seat mail that went out is not
queued again. A kind without a key is queued anew every time (a confirmation link each time
someone signs up again).

Handlers are named "module:function" and looked up when the app is made (`bind`, in create_app),
so this table imports none of them: the modules that hold handlers queue follow-up work through it.
A kind's `batch` runs a claimed batch of its jobs (one SMTP connection for all mails, one HTTP
session for platform calls) and calls `handler` for each; see docs/ARCHITECTURE.md.
"""
from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from flask import current_app
from flask_babel import lazy_gettext

from ..models import Job, Lane, Registration, Seminar
from . import outbox

INTERACTIVE, BULK = Lane.INTERACTIVE, Lane.BULK


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter (so retries of many jobs spread out instead of stampeding):
    `base` seconds after the first attempt, doubling up to `cap`. After `max_attempts` (None: the
    WORKER_MAX_ATTEMPTS setting, 12 by default, roughly a day) the job is marked failed."""

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int | None = None

    def delay(self, attempts: int) -> float:
        delay = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        return delay * random.uniform(0.5, 1.0)

    def gives_up(self, attempts: int) -> bool:
        limit = self.max_attempts or current_app.config["WORKER_MAX_ATTEMPTS"]
        return attempts >= limit


BACKOFF = RetryPolicy()


@dataclass(frozen=True, eq=False)
class JobKind:
    name: str
    label: object  # a lazy translation: what organisers see in the outbox
    lane: Lane
    batch: str  # "module:function" running a claimed batch: (jobs, recorder) -> None
    handler: str | None = None  # "module:function" doing one job (a mail's composer, a platform call)
    key: str | None = None  # the intent's name, e.g. "seat-mail:{registration}"
    once: bool = False  # the key holds for ever, not only while a job is waiting
    retry: RetryPolicy = BACKOFF
    to_users: bool = False  # a mail to a portal user (payload["user_id"]), not to an attendee
    to_subscribers: bool = False  # a mail to the interest list (payload["subscriber_id"]): handler gets (job)
    _bound: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def short_name(self) -> str:
        """The name without its family ("seat_confirmed"), as an add job's payload names its mail."""
        return self.name.partition(".")[2]

    @property
    def is_mail(self) -> bool:
        return self.batch == MAIL_BATCH

    def key_for(self, *, registration: Registration | None = None, seminar: Seminar | None = None,
                registration_id: int | None = None, seminar_id: int | None = None, **payload) -> str | None:
        if self.key is None:
            return None
        if registration is not None:
            registration_id = registration.id
        if seminar is not None:
            seminar_id = seminar.id
        return self.key.format(registration=registration_id, seminar=seminar_id, **payload)

    def enqueue(self, *, registration: Registration | None = None, seminar: Seminar | None = None,
                due_at: datetime | None = None, calendar: str | None = None, **payload) -> Job:
        """Queue this intent in the current transaction (once: see the module's docstring).
        `calendar` (REQUEST or CANCEL): the mail carries a calendar invite whose SEQUENCE is fixed
        now, so every invite sent has a higher one than the last."""
        key = self.key_for(registration=registration, seminar=seminar, **payload)
        if key is not None:
            existing = outbox.queued(key, self.once)  # pending (or, with `once`, ever queued)
            if existing is not None:
                return existing
        if calendar:
            payload.update(method=calendar, sequence=registration.ical_sequence)
            registration.ical_sequence += 1
        return outbox.add(self.name, self.lane, key, registration=registration,
                          seminar=seminar, due_at=due_at, payload=payload)

    def enqueue_new(self, *, seminar_id: int, registration_id: int, connection=None, **payload) -> None:
        """`enqueue`, due now, for a registration inserted in this very transaction: nothing can be
        queued under its key yet, so it is one INSERT without a look-up (the sign-up path).
        `connection`: the transaction's, when it is not the session's (database.write_connection)."""
        outbox.insert(self.name, self.lane,
                      self.key_for(registration_id=registration_id, seminar_id=seminar_id, **payload),
                      seminar_id=seminar_id, registration_id=registration_id, payload=payload,
                      connection=connection)

    def drop_pending(self, *, registration_id: int | None = None, seminar_id: int | None = None) -> None:
        """Remove queued jobs of this kind that no longer apply (e.g. reminders of a moved seminar)."""
        outbox.drop_pending(self.name, registration_id=registration_id, seminar_id=seminar_id)

    def run_batch(self) -> Callable:
        return self._bound["batch"]

    def handle(self) -> Callable:
        return self._bound["handler"]


MAIL_BATCH = "seminar.notify.delivery:deliver"
PLATFORM_BATCH = "seminar.video.jobs:run_platform_calls"


def _mail(name: str, lane: Lane, key: str | None, label, once: bool = False) -> JobKind:
    return JobKind(f"mail.{name}", label, lane, MAIL_BATCH, handler=f"seminar.notify.mails:{name}",
                   key=key, once=once)


def _user_mail(name: str, lane: Lane, key: str | None, label) -> JobKind:
    return JobKind(f"mail.{name}", label, lane, MAIL_BATCH, handler=f"seminar.manage.mails:{name}", key=key,
                   to_users=True)


def _platform(name: str, lane: Lane, key: str, label, handler: str | None = None) -> JobKind:
    return JobKind(f"video.{name}", label, lane, PLATFORM_BATCH,
                   handler=handler or f"seminar.video.jobs:{name}", key=key)


# Each kind: name, lane, key, label (and what differs from its family's usual).
# ---------------------------------------------------------------- mails to attendees
# Every sign-up (again) is answered with a mail of its own: no key.
CONFIRM_ADDRESS = _mail("confirm_address", INTERACTIVE, None, lazy_gettext("Mail: confirm your address"))
ALREADY_REGISTERED = _mail("already_registered", INTERACTIVE, None, lazy_gettext("Mail: already registered"))
# Both seat mails share one key: a registration gets its seat mail once, whichever it is.
SEAT_CONFIRMED = _mail("seat_confirmed", INTERACTIVE, "seat-mail:{registration}",
                       lazy_gettext("Mail: seat confirmed, with invite"), once=True)
PROMOTED = _mail("promoted", INTERACTIVE, "seat-mail:{registration}",
                 lazy_gettext("Mail: seat from the waitlist, with invite"), once=True)
# A person who just confirmed or cancelled is waiting for these two as well.
WAITLISTED = _mail("waitlisted", INTERACTIVE, "waitlisted:{registration}", lazy_gettext("Mail: on the waitlist"))
REGISTRATION_CANCELLED = _mail("registration_cancelled", INTERACTIVE, "cancelled:{registration}",
                               lazy_gettext("Mail: registration cancelled"))
REMINDER = _mail("reminder", BULK, "reminder:{registration}:{hours}", lazy_gettext("Mail: reminder"))
SEMINAR_CHANGED = _mail("seminar_changed", BULK, "changed:{registration}",
                        lazy_gettext("Mail: seminar changed, calendar update"))
SEMINAR_CANCELLED = _mail("seminar_cancelled", BULK, "seminar-cancelled:{registration}",
                          lazy_gettext("Mail: seminar cancelled"))

# ---------------------------------------------------------------- mails to portal users
# A reset link and a new host's invite (payload invite=True): someone is waiting for either, and
# each request gets a mail of its own.
PASSWORD_RESET = _user_mail("password_reset", INTERACTIVE, None, lazy_gettext("Mail: portal password link"))
HOST_DIGEST = _user_mail("host_digest", BULK, "digest:{seminar}:{user_id}:{hours}",
                         lazy_gettext("Mail: attendee list for hosts"))
# Bulk mail held for over an hour (the relay's quota is used up): one to each organiser per hold.
# Interactive: it must not wait behind the very mail that is held.
RELAY_HELD = _user_mail("relay_held", INTERACTIVE, "relay-held:{held}:{user_id}",
                        lazy_gettext("Mail: relay quota used up, mail held"))

# ---------------------------------------------------------------- calls to the video platform
# Attendees' seat mails wait for these two. Adding runs many attendees per call (attendees.py).
CREATE_MEETING = _platform("create_meeting", INTERACTIVE, "create-meeting:{seminar}",
                           lazy_gettext("Platform: create meeting"))
ADD_ATTENDEE = JobKind("video.add_attendee", lazy_gettext("Platform: add attendee"), INTERACTIVE,
                       batch="seminar.video.attendees:add_attendees", key="add:{registration}")
UPDATE_MEETING = _platform("update_meeting", BULK, "update-meeting:{seminar}", lazy_gettext("Platform: update meeting"))
DELETE_MEETING = _platform("delete_meeting", BULK, "delete-meeting:{seminar}", lazy_gettext("Platform: delete meeting"))
REMOVE_ATTENDEE = _platform("remove_attendee", BULK, "remove:{registration}",
                            lazy_gettext("Platform: remove attendee"))
# Keeping the platform in step with our list (reconcile.py).
CHECK_MEETING = _platform("check_meeting", BULK, "check:{seminar}", lazy_gettext("Platform: check meeting"),
                          "seminar.video.reconcile:check_meeting")
RECONCILE = _platform("reconcile", BULK, "reconcile:{seminar}", lazy_gettext("Platform: reconcile attendees"),
                      "seminar.video.reconcile:reconcile")
ATTENDANCE = _platform("attendance", BULK, "attendance:{seminar}", lazy_gettext("Platform: fetch attendance"),
                       "seminar.video.reconcile:fetch_attendance")

# ---------------------------------------------------------------- after the seminar (issue 12)
FOLLOW_UP_BATCH = "seminar.attendance.followup:run_jobs"
# Once per seminar and start time (a seminar moved after its follow-up was queued gets one at its
# new time); `release` is set when an organiser lifts the hold after the time has passed.
FOLLOW_UP = JobKind("attendance.follow_up", lazy_gettext("After the seminar: attendance and follow-up"), BULK,
                    FOLLOW_UP_BATCH, handler="seminar.attendance.followup:follow_up",
                    key="follow-up:{seminar}:{start}{release}", once=True)
CERTIFICATE = JobKind("attendance.certificate", lazy_gettext("After the seminar: certificate of attendance"),
                      BULK, FOLLOW_UP_BATCH, handler="seminar.attendance.followup:build_certificate",
                      key="certificate:{registration}", once=True)


def _after_mail(name: str, label, key: str, to_users: bool = False) -> JobKind:
    """A mail after the seminar: bulk, composed in seminar/attendance/mails.py, sent once for ever."""
    return JobKind(f"mail.{name}", label, BULK, MAIL_BATCH, handler=f"seminar.attendance.mails:{name}",
                   key=key, once=True, to_users=to_users)


# Each person hears once after the seminar (a late correction to "attended" still sends the thanks).
FOLLOW_UP_ATTENDED = _after_mail("follow_up_attended", lazy_gettext("Mail: thanks, with certificate"),
                                 "follow-up-attended:{registration}")
FOLLOW_UP_ABSENT = _after_mail("follow_up_absent", lazy_gettext("Mail: we missed you, with the recording"),
                               "follow-up-absent:{registration}")
RECORDING_ONLINE = _after_mail("recording_online", lazy_gettext("Mail: the recording is online"),
                               "recording-mail:{registration}:{recording}")
ATTENDANCE_SUMMARY = _after_mail("attendance_summary", lazy_gettext("Mail: attendance summary for hosts"),
                                 "attendance-summary:{seminar}:{user_id}", to_users=True)


# ---------------------------------------------------------------- the interest list (seminar/reach)
# Mails to a subscriber carry payload["subscriber_id"]; their composer (reach/mails.py) gets (job),
# finds the subscriber and renders the mail itself.
def _list_mail(name: str, label, lane: Lane, key: str | None, once: bool = False, handler: str | None = None) -> JobKind:
    return JobKind(f"mail.{name}", label, lane, MAIL_BATCH, handler=f"seminar.reach.mails:{handler or name}",
                   key=key, once=once, to_subscribers=True)


# Someone just asked on the home page (or signed up again) and is waiting for these.
LIST_CONFIRM = _list_mail("list_confirm", lazy_gettext("Mail: confirm the interest list"), INTERACTIVE, None)
LIST_KNOWN = _list_mail("list_known", lazy_gettext("Mail: already on the interest list"), INTERACTIVE, None)
# One announcement per subscriber and seminar, ever (AnnouncementDelivery holds it too).
ANNOUNCEMENT = _list_mail("announcement", lazy_gettext("Mail: seminar announcement"), BULK,
                          "announce:{seminar}:{subscriber_id}", once=True, handler="announcement_mail")
LIST_STILL = _list_mail("list_still", lazy_gettext("Mail: still interested?"), BULK, "list-still:{subscriber_id}")
# An organiser's test of an announcement, to their own address: they are looking at the portal.
ANNOUNCEMENT_TEST = JobKind("mail.announcement_test", lazy_gettext("Mail: test of an announcement"), INTERACTIVE,
                            MAIL_BATCH, handler="seminar.reach.mails:announcement_test", to_users=True)

# The mail that follows adding an attendee at the platform, by the name in the add job's payload.
SEAT_MAILS = {kind.short_name: kind for kind in (SEAT_CONFIRMED, PROMOTED)}

ALL: tuple[JobKind, ...] = tuple(value for value in list(globals().values()) if isinstance(value, JobKind))
BY_NAME: dict[str, JobKind] = {kind.name: kind for kind in ALL}


def get(name: str) -> JobKind | None:
    return BY_NAME.get(name)


def label(name: str) -> str:
    """What an outbox entry is, in words (the name itself for a kind no longer declared)."""
    kind = BY_NAME.get(name)
    return str(kind.label) if kind is not None else name


def mails() -> Iterable[JobKind]:
    return (kind for kind in ALL if kind.is_mail)


def _resolve(reference: str) -> Callable:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def bind() -> None:
    """Look every kind's handlers up (create_app calls this): a misspelt one stops the app from
    starting instead of failing jobs later."""
    for kind in ALL:
        if kind._bound:
            continue
        kind._bound["batch"] = _resolve(kind.batch)
        kind._bound["handler"] = _resolve(kind.handler) if kind.handler else None
