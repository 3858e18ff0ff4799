"""The relay's quota as the operator writes it (MAIL_RATE_LIMIT, Flask-Limiter's notation).

`30/minute;10000/day` (Exchange Online) becomes a pace (one message every 2 s) and a window that
is counted (10,000 in any day). The pace (the slowest of the windows shorter than an hour, a hair
under it) keeps the sending smooth, so a relay that counts per second or per minute never sees a
burst, and keeps those windows by itself; the count keeps a long quota (a day's) from being used
up by a steady pace.
"""
from __future__ import annotations

from dataclasses import dataclass

from limits import parse_many

# Pacing a hair below the quota leaves room for the jitter between when we start a message and
# when the relay counts it (the end of DATA, a few round trips later).
MARGIN = 0.05
# A window counted in this many buckets (a day: in hours). Counting whole buckets errs towards
# sending less, by at most one bucket's worth of time.
BUCKETS = 24
LONG_WINDOW = 3600  # windows this long or longer are a "quota" (held until it turns), not a pace


@dataclass(frozen=True)
class Window:
    amount: int
    seconds: int

    @property
    def bucket(self) -> int:
        """Seconds per counted bucket (at least 1)."""
        return max(1, self.seconds // BUCKETS)

    @property
    def key(self) -> str:
        return f"{self.amount}/{self.seconds}"

    @property
    def is_quota(self) -> bool:
        return self.seconds >= LONG_WINDOW


@dataclass(frozen=True)
class Quota:
    windows: tuple[Window, ...]

    @property
    def known(self) -> bool:
        return bool(self.windows)

    @property
    def rate(self) -> float | None:
        """Messages per second the pace allows, or None (no known limit shorter than an hour).
        The slowest of the short windows sets it: `100/second;1000/minute` paces at 16/s rather
        than sending 1,000 in ten seconds and then nothing for fifty."""
        rates = [w.amount / w.seconds for w in self.windows if not w.is_quota]
        return min(rates) / (1 + MARGIN) if rates else None

    def seconds_for(self, count: int) -> float:
        """How long `count` messages take at the known quota (0 when none is known): the pace,
        and every longer window that they would overrun."""
        if not self.windows or count <= 0:
            return 0.0
        rate = self.rate
        seconds = (count - 1) / rate if rate else 0.0
        for window in self.windows:
            full = (count - 1) // window.amount  # whole windows to wait for
            seconds = max(seconds, full * window.seconds)
        return seconds

    def lead(self, backlog: int, group: int, horizon: float) -> float:
        """How long before its due time a group of `group` messages (and the `backlog` due
        before it) has to start to be gone by then; for moving bulk mail forward
        (mail_schedule.start_early), looking `horizon` seconds ahead.

        The pace counts the backlog too: the relay is busy with it first. A window longer than
        the pace counts the group alone, and only if it is shorter than the horizon: mail sent
        less than a window's length earlier still falls in the same window (a day's quota does
        not let through more today because tomorrow's reminders went today), so moving it
        forward gets no more through; a backlog bigger than a window carries is held until the
        window turns, whatever follows it."""
        if group <= 0:
            return 0.0
        rate = self.rate
        seconds = (backlog + group - 1) / rate if rate else 0.0
        for window in self.windows:
            if window.is_quota and window.seconds < horizon:
                seconds = max(seconds, (group - 1) // window.amount * window.seconds)
        return seconds


def parse_quota(text: str | None) -> Quota:
    """MAIL_RATE_LIMIT → Quota; raises ValueError with a clear message for text it can't read."""
    if not text or not text.strip():
        return Quota(())
    try:
        items = parse_many(text)
    except ValueError as exc:
        raise ValueError(f"MAIL_RATE_LIMIT {text!r}: not in Flask-Limiter's notation "
                         f"(e.g. '20/second' or '30/minute;10000/day')") from exc
    windows = tuple(sorted((Window(item.amount, item.get_expiry()) for item in items),
                           key=lambda w: w.seconds))
    if any(w.amount <= 0 for w in windows):
        raise ValueError(f"MAIL_RATE_LIMIT {text!r}: every limit needs at least one message")
    return Quota(windows)
