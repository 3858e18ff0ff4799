"""Sign-ups per day as a small bar chart, drawn server-side as SVG (no script, no inline style).

`signup_chart` returns the numbers and the geometry; templates/manage/_chart.html draws it, with
a title, a description and a table as the text alternative.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import Registration, RegistrationStatus, Seminar
from ..timeutil import to_local, utcnow

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34


@dataclass(frozen=True)
class Box:
    """A bar's rectangle in an SVG chart (y grows downwards), standing on a baseline; also the
    attendance chart's (attendance/portal.py)."""
    x: float
    y: float
    width: float
    height: float

    @classmethod
    def standing(cls, x: float, width: float, base: float, height: float) -> "Box":
        """The box of `height` whose bottom is at `base`."""
        return cls(x, base - height, width, height)

    @property
    def middle(self) -> float:
        return self.x + self.width / 2


NO_BOX = Box(0, 0, 0, 0)


@dataclass
class Bar:
    day: date
    confirmed: int
    waitlisted: int
    total_so_far: int
    seat: Box = NO_BOX  # the confirmed part, at the bottom
    waiting: Box = NO_BOX  # the waitlisted part, on top of it

    @property
    def count(self) -> int:
        return self.confirmed + self.waitlisted


@dataclass
class Chart:
    bars: list[Bar]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    ticks: list[tuple[int, float]] = field(default_factory=list)  # (value, y)
    labels: list[tuple[str, float]] = field(default_factory=list)  # (date text, x)
    left: int = LEFT
    right: int = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)

    @property
    def busiest(self) -> Bar | None:
        return max(self.bars, key=lambda bar: bar.count) if self.bars else None

    @property
    def days_with_signups(self) -> list[Bar]:
        return [bar for bar in self.bars if bar.count]


def _on_list_day(reg: Registration) -> date:
    moments = [m for m in (reg.confirmed_at, reg.waitlisted_at) if m is not None]
    return to_local(min(moments)).date()


def signup_chart(seminar: Seminar) -> Chart:
    """Everyone now holding a seat or a waitlist place, by the day they got on the list."""
    regs = db.session.scalars(select(Registration).where(
        Registration.seminar_id == seminar.id, Registration.status.in_((RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED))))
    per_day: dict[date, Counter] = {}
    for reg in regs:
        per_day.setdefault(_on_list_day(reg), Counter())[reg.status] += 1
    if not per_day:
        return Chart(bars=[], peak=0)
    first = min(per_day)
    # Up to today (or the start, when that has passed), so quiet days at the end show as such.
    last = max(max(per_day), min(to_local(utcnow()).date(), to_local(seminar.start_at).date()))
    bars, running = [], 0
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        counts = per_day.get(day, Counter())
        seats, waiting = counts[RegistrationStatus.CONFIRMED], counts[RegistrationStatus.WAITLISTED]
        running += seats + waiting
        bars.append(Bar(day, seats, waiting, running))
    chart = Chart(bars=bars, peak=max(bar.count for bar in bars))
    _layout(chart)
    return chart


def _layout(chart: Chart) -> None:
    plot_w = chart.right - chart.left
    plot_h = chart.baseline - TOP
    top_value = max(chart.peak, 1)
    slot = plot_w / len(chart.bars)
    scale = plot_h / top_value
    for index, bar in enumerate(chart.bars):
        width = round(max(slot * 0.8, 1.0), 2)
        x = round(chart.left + index * slot + (slot - width) / 2, 2)
        bar.seat = _rounded(Box.standing(x, width, chart.baseline, round(bar.confirmed * scale, 2)))
        bar.waiting = _rounded(Box.standing(x, width, bar.seat.y, round(bar.waitlisted * scale, 2)))
    values = sorted({0, top_value, top_value // 2} if top_value >= 2 else {0, top_value})
    chart.ticks = [(v, round(chart.baseline - v * scale, 2)) for v in values]
    step = max(1, -(-len(chart.bars) // 6))  # about six date labels, first one always
    chart.labels = [(f"{bar.day.day}-{bar.day.month}", round(bar.seat.middle, 2))
                    for bar in chart.bars[::step]]


def _rounded(box: Box) -> Box:
    return Box(*(round(value, 2) for value in (box.x, box.y, box.width, box.height)))
