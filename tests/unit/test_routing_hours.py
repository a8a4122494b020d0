"""Weekly schedules: parsing and whether a moment lies inside."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.routing.hours import ALWAYS, parse_schedule

# 2024-06-03 is a Monday.
MON = 3


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 6, day, hour, minute)


@pytest.mark.parametrize(
    ("schedule", "moment", "expected"),
    [
        ("24h", at(MON, 3), True),
        ({"mon-fri": ["08:30-12:00", "13:30-17:30"]}, at(MON, 8, 29), False),
        ({"mon-fri": ["08:30-12:00", "13:30-17:30"]}, at(MON, 8, 30), True),
        ({"mon-fri": ["08:30-12:00", "13:30-17:30"]}, at(MON, 12, 0), False),
        ({"mon-fri": ["08:30-12:00", "13:30-17:30"]}, at(MON + 5, 10), False),  # Saturday
        ({"sat": "09:00-12:00"}, at(MON + 5, 10), True),
        ({"daily": ["22:00-06:00"]}, at(MON, 23), True),
        ({"daily": ["22:00-06:00"]}, at(MON, 5, 59), True),
        ({"daily": ["22:00-06:00"]}, at(MON, 6), False),
        # A Friday night shift reaches into Saturday morning, and only there.
        ({"fri": ["22:00-06:00"]}, at(MON + 5, 2), True),
        ({"fri": ["22:00-06:00"]}, at(MON + 4, 2), False),
        # Sunday's night shift reaches into Monday morning.
        ({"sun": ["20:00-08:00"]}, at(MON, 7), True),
        ({"mon": ["18:00-24:00"]}, at(MON, 23, 59), True),
        ({"mon": ["18:00-24:00"]}, at(MON + 1, 0, 30), False),
    ],
)
def test_contains(schedule: object, moment: datetime, expected: bool) -> None:
    assert parse_schedule(schedule).contains(moment) is expected


def test_24h_is_always() -> None:
    assert parse_schedule("24h") is ALWAYS
    assert str(parse_schedule({"mon-wed": "09:00-17:00"})) == (
        "mon 09:00-17:00; tue 09:00-17:00; wed 09:00-17:00")


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"mo": ["09:00-10:00"]}, "unknown day 'mo'"),
        ({"fri-mon": ["09:00-10:00"]}, "unknown day 'fri-mon'"),
        ({"mon": ["9:00-10:00"]}, "interval '9:00-10:00' is not HH:MM-HH:MM"),
        ({"mon": ["25:00-26:00"]}, "impossible time"),
        ({"mon": ["09:00-09:00"]}, "is empty"),
        ({"mon-fri": ["09:00-10:00"], "wed": ["12:00-13:00"]}, "wed is given twice"),
        ({"mon": []}, "give a list"),
        ("always", "a schedule is '24h' or a mapping"),
    ],
)
def test_bad_schedules(schedule: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(schedule)
