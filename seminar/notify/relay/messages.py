"""What goes through the relay sender: a message (`Outgoing`), what became of it (`Result`,
`Kind`), and the two lanes it waits in (`Lanes`: interactive first, bulk keeping a share)."""
from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..lanes import BULK, INTERACTIVE
from .answers import Answer

BULK_SHARE = 4  # of every this many messages while both lanes wait, one is bulk


class Kind(enum.Enum):
    ACCEPTED = "accepted"
    WAIT = "wait"            # throttled (or the pace is far off): try again at `until`, not an attempt
    HELD = "held"            # quota used up: held until `until`, not an attempt
    TEMPORARY = "temporary"  # this message, now: retry later as usual
    PERMANENT = "permanent"  # never: fail it
    UNTRIED = "untried"      # the sender stopped before trying it


@dataclass
class Outgoing:
    key: Any                 # the caller's handle (e.g. the job)
    sender: str
    recipient: str
    data: bytes
    lane: str = BULK
    smtputf8: bool = False
    requeued: int = 0
    tried: bool = False      # the relay saw it at least once (throttled ones count)
    deadline: float = 0.0    # time.monotonic() after which it goes back to the job queue
    reply: Any = None        # a queue for its Result (else the sender's `results`)


@dataclass
class Result:
    item: Outgoing
    kind: Kind
    answer: Answer | None = None
    until: float | None = None  # epoch seconds
    reason: str = ""


@dataclass
class Lanes:
    interactive: deque = field(default_factory=deque)
    bulk: deque = field(default_factory=deque)
    in_a_row: int = 0  # interactive picks in a row while bulk waited

    def __len__(self) -> int:
        return len(self.interactive) + len(self.bulk)

    def next_lane(self) -> str:
        """Interactive first; while both wait, every BULK_SHARE-th message is bulk."""
        if self.bulk and (not self.interactive or self.in_a_row >= BULK_SHARE - 1):
            return BULK
        return INTERACTIVE

    def pick(self, reserved: str) -> Outgoing | None:
        """The next message for a start reserved for `reserved` (a bulk start may carry either;
        an interactive one, reserved past a hold on bulk mail, only interactive mail)."""
        lane = self.next_lane() if reserved == BULK else INTERACTIVE
        if lane == BULK and self.bulk:
            self.in_a_row = 0
            return self.bulk.popleft()
        if self.interactive:
            self.in_a_row = self.in_a_row + 1 if self.bulk else 0
            return self.interactive.popleft()
        return None

    def put_back(self, item: Outgoing) -> None:
        (self.interactive if item.lane == INTERACTIVE else self.bulk).appendleft(item)
