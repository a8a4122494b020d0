"""``condition``: choose a branch by time of day, weekday, a calendar (holidays, make-up
workdays), a caller list or variables. Cases are tried in order; the first whose test
holds wins, else ``else``. Time is taken from ``CallStart.now`` as given (the controller
passes the hotline's local time)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, time
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ivr.menu.verbs.base import (
    CATEGORY_VARIABLE,
    LOCATION_VARIABLE,
    Exit,
    NameUse,
    Next,
    NodeBase,
    NodeId,
    PathKey,
    Step,
)

if TYPE_CHECKING:
    from ivr.menu.calendars import Calendar, CallerList
    from ivr.menu.runtime import CallState

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME_RANGE_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$"
TimeRange = Annotated[
    str,
    Field(
        pattern=TIME_RANGE_PATTERN,
        description='"08:30-17:30": from (inclusive) to (exclusive); may wrap past midnight',
    ),
]


class Test(BaseModel):
    """Every key given must hold (and); ``not`` negates a nested test."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )
    time: TimeRange | None = None
    weekday: list[Weekday] | None = Field(default=None, min_length=1)
    calendar: str | None = Field(default=None, description="Today is in this named calendar")
    caller_in: str | None = Field(default=None, description="Caller is in this named list")
    variables: dict[str, str | list[str]] | None = Field(
        default=None,
        description="Variable equals the value (or one of the list); line, caller and "
        "language can be tested too",
    )
    negated: Test | None = Field(default=None, alias="not")

    def names(self, path: PathKey) -> Iterator[NameUse]:
        if self.calendar is not None:
            yield NameUse("calendar", (*path, "calendar"), self.calendar)
        if self.caller_in is not None:
            yield NameUse("caller_list", (*path, "caller_in"), self.caller_in)
        for name, wanted in (self.variables or {}).items():
            kind: Literal["category", "unit"] | None = (
                "category"
                if name == CATEGORY_VARIABLE
                else "unit"
                if name == LOCATION_VARIABLE
                else None
            )
            if kind is not None:
                values = wanted if isinstance(wanted, list) else [wanted]
                where = (*path, "variables", name)
                for index, value in enumerate(values):
                    at = (*where, index) if isinstance(wanted, list) else where
                    yield NameUse(kind, at, value)
        if self.negated is not None:
            yield from self.negated.names((*path, "not"))

    def is_empty(self) -> bool:
        return all(
            getattr(self, name) is None
            for name in ("time", "weekday", "calendar", "caller_in", "variables", "negated")
        )

    def holds(
        self,
        now: datetime,
        variables: Mapping[str, str],
        caller: str,
        calendars: Mapping[str, Calendar],
        caller_lists: Mapping[str, CallerList],
    ) -> bool:
        if self.time is not None and not in_time_range(self.time, now.time()):
            return False
        if self.weekday is not None and WEEKDAYS[now.weekday()] not in self.weekday:
            return False
        if self.calendar is not None:
            calendar = calendars.get(self.calendar)
            if calendar is None or not calendar.contains(now.date()):
                return False
        if self.caller_in is not None:
            callers = caller_lists.get(self.caller_in)
            if callers is None or not callers.contains(caller):
                return False
        for name, wanted in (self.variables or {}).items():
            value = variables.get(name)
            if value is None or value not in (wanted if isinstance(wanted, list) else [wanted]):
                return False
        return self.negated is None or not self.negated.holds(
            now, variables, caller, calendars, caller_lists
        )


def in_time_range(spec: str, moment: time) -> bool:
    match = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", spec)
    if match is None:
        raise ValueError(f"not a time range: {spec!r}")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    minute = moment.hour * 60 + moment.minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    when: Test
    goto: NodeId


class ConditionNode(NodeBase):
    verb: Literal["condition"]
    cases: list[Case] = Field(min_length=1)
    otherwise: NodeId = Field(alias="else", description="Where to go when no case holds")

    model_config = ConfigDict(populate_by_name=True)

    def exits(self) -> Iterator[Exit]:
        for index, case in enumerate(self.cases):
            yield Exit(("cases", index, "goto"), case.goto, silent=True)
        yield Exit(("else",), self.otherwise, silent=True)

    def names(self) -> Iterator[NameUse]:
        for index, case in enumerate(self.cases):
            yield from case.when.names(("cases", index, "when"))

    def problems(self) -> Iterator[tuple[PathKey, str]]:
        for index, case in enumerate(self.cases):
            yield from _empty_tests(case.when, ("cases", index, "when"))

    async def run(self, state: CallState) -> Step:
        variables = {
            **state.variables,
            "line": state.call.line,
            "caller": state.call.caller,
            "language": state.language,
        }
        for case in self.cases:
            if case.when.holds(
                state.call.now,
                variables,
                state.call.caller,
                state.tree.calendars,
                state.tree.caller_lists,
            ):
                return Next(case.goto)
        return Next(self.otherwise)


def _empty_tests(test: Test, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    if test.is_empty():
        yield path, "empty test: give time, weekday, calendar, caller_in, variables or not"
    if test.negated is not None:
        yield from _empty_tests(test.negated, (*path, "not"))
