"""What became of a job, as its handler reports it.

A handler returns `Done` (or a short note, or None) when the job did what it should, and raises
`Retry` (a temporary failure: again later), `Defer` (not a failure: it waits for something) or
`Fail` (permanent: shown to organisers). The runner records each in one place (runner.py); this
module knows nothing of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Done:
    """A job's successful result. `apply` runs, and `fields` are stored on the job, in the same
    transaction that marks it done: handlers call the outside world without writing anything,
    so their effects land exactly when the job is recorded as done."""

    note: str | None = None
    apply: Callable[[], None] | None = None
    fields: dict = field(default_factory=dict)


class Retry(Exception):
    """A temporary failure: run the job again after its kind's backoff (or after `after` seconds,
    the other side's wish). `release_rest`: the rest of the batch would fail the same way (the
    connection is gone, a rate limit was hit): hand it back untried."""

    def __init__(self, message: str, after: float | None = None, release_rest: bool = False):
        super().__init__(message)
        self.after = after
        self.release_rest = release_rest


class Defer(Exception):
    """Not a failure: the job waits for something else (e.g. the meeting to exist)."""

    def __init__(self, message: str, after: float = 5.0):
        super().__init__(message)
        self.after = after


class Fail(Exception):
    """A permanent failure: mark the job failed and show it to organisers."""
