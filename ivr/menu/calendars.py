"""Named calendars (holidays, make-up workdays) and caller lists that conditions test."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, model_validator


class DateRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    first: date = Field(alias="from")
    last: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.last < self.first:
            raise ValueError("'to' is before 'from'")
        return self


def _day_kind(value: Any) -> str:
    return "Range" if isinstance(value, dict) else "Day"


#: A tagged union, so a bad item gets one message, not one per alternative.
CalendarDay = Annotated[
    Annotated[date, Tag("Day")] | Annotated[DateRange, Tag("Range")], Discriminator(_day_kind)
]


class Calendar(RootModel[list[CalendarDay]]):
    """Days, each a date (2025-10-01) or a range ``{from: 2025-10-01, to: 2025-10-08}``."""

    model_config = ConfigDict(frozen=True)

    def contains(self, day: date) -> bool:
        for item in self.root:
            if isinstance(item, DateRange):
                if item.first <= day <= item.last:
                    return True
            elif item == day:
                return True
        return False


CALLER_PATTERN = r"^\+?[0-9]+\*?$"
CallerPattern = Annotated[
    str,
    Field(
        pattern=CALLER_PATTERN,
        description="A caller number, or a prefix ending with * (0571*)",
    ),
]


class CallerList(RootModel[list[CallerPattern]]):
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    def contains(self, caller: str) -> bool:
        for pattern in self.root:
            if pattern.endswith("*"):
                if caller.startswith(pattern[:-1]):
                    return True
            elif caller == pattern:
                return True
        return False
