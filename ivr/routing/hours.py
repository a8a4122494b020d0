"""Weekly schedules: a unit's working hours and a rule's time window, written the same way.

A schedule is either ``24h`` or a mapping of days to ``HH:MM-HH:MM`` intervals::

    mon-fri: ["08:30-12:00", "13:30-17:30"]
    sat: ["09:00-12:00"]
    daily: ["22:00-07:00"]      # a night shift: an interval that ends before it starts
                                # runs past midnight into the next day

Day keys are ``mon`` .. ``sun``, a range such as ``mon-fri``, or ``daily``. Giving one day
twice is an error rather than a merge, so an admin never wonders which line counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
ALWAYS_TEXT = "24h"
_INTERVAL = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class Interval:
    """Minutes after midnight, ``end`` in 1..1440; ``end <= start`` means the interval
    runs past midnight into the next day."""

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True)
class WeeklySchedule:
    """Intervals for each weekday (index 0 = Monday), or always open."""

    days: tuple[tuple[Interval, ...], ...] = ((),) * 7
    always: bool = False

    def contains(self, local: datetime) -> bool:
        """Whether ``local`` (already in the city's time zone) lies inside the schedule."""
        if self.always:
            return True
        weekday = local.weekday()
        minute = local.hour * 60 + local.minute
        for interval in self.days[weekday]:
            if interval.crosses_midnight:
                if minute >= interval.start:
                    return True
            elif interval.start <= minute < interval.end:
                return True
        return any(
            interval.crosses_midnight and minute < interval.end
            for interval in self.days[(weekday - 1) % 7]
        )

    def __str__(self) -> str:
        if self.always:
            return ALWAYS_TEXT
        parts = [
            f"{day} {' '.join(str(i) for i in intervals)}"
            for day, intervals in zip(DAYS, self.days, strict=True)
            if intervals
        ]
        return "; ".join(parts) or "never"


ALWAYS = WeeklySchedule(always=True)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_interval(text: str) -> Interval:
    match = _INTERVAL.match(text.strip())
    if not match:
        raise ValueError(f"interval {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"interval {text!r} has an impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    # Midnight as an end is the end of the day, not a shift into the next one.
    end = end or MINUTES_PER_DAY
    if start == end:
        raise ValueError(f"interval {text!r} is empty; write 24h for always")
    return Interval(start, end)


def _parse_days(key: str) -> list[int]:
    if key == "daily":
        return list(range(7))
    if key in DAYS:
        return [DAYS.index(key)]
    first, sep, last = key.partition("-")
    if sep and first in DAYS and last in DAYS:
        start, stop = DAYS.index(first), DAYS.index(last)
        if start < stop:
            return list(range(start, stop + 1))
    raise ValueError(f"unknown day {key!r} (use mon..sun, a range like mon-fri, or daily)")


def parse_schedule(value: Any) -> WeeklySchedule:
    """The pydantic before-validator for schedules; raises ValueError with a plain message."""
    if isinstance(value, WeeklySchedule):
        return value
    if value == ALWAYS_TEXT:
        return ALWAYS
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"a schedule is {ALWAYS_TEXT!r} or a mapping of days to intervals")
    days: list[list[Interval]] = [[] for _ in DAYS]
    seen: set[int] = set()
    for key, intervals in value.items():
        indices = _parse_days(str(key))
        twice = seen.intersection(indices)
        if twice:
            raise ValueError(f"{DAYS[min(twice)]} is given twice")
        seen.update(indices)
        if isinstance(intervals, str):
            intervals = [intervals]
        if not isinstance(intervals, list) or not intervals:
            raise ValueError(f"{key}: give a list of HH:MM-HH:MM intervals")
        parsed = [_parse_interval(str(text)) for text in intervals]
        for index in indices:
            days[index].extend(parsed)
    return WeeklySchedule(days=tuple(tuple(sorted(d, key=lambda i: i.start)) for d in days))
