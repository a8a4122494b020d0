"""Service metrics of the hotline (issue 9 part 3), as pure functions over ticket records.

Definitions, so that every figure can be checked by hand:

- calls: every ticket in the group (every call made one).
- offered: calls that asked for a person (see :class:`~ivr.reports.records.Disposition`):
  answered + abandoned + unanswered (voice message, nobody available, fallback). Calls served
  by the menus alone or handed to 110 are not offered.
- service level: calls answered within ``answer_within`` seconds of waiting / offered.
- answer rate: answered / offered; abandon rate: abandoned / offered.
- wait: ``wait_seconds`` of offered calls (an answered call waited until the answer, another
  until it left the queue); p90 is the nearest-rank 90th percentile.
- talk: ``talk_seconds`` of answered calls.
- on time: tickets resolved by their deadline / tickets due (with a deadline, and resolved or
  past the deadline at ``now``).
- satisfaction: follow-ups rated satisfied or basically satisfied / follow-ups rated.

A rate whose denominator is 0 is None ("no data"), never 0 %.
Days, weeks (ISO, Monday first) and months are those of the deployment's time zone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from enum import StrEnum

from ivr.reports.records import Disposition, TicketRecord

DEFAULT_ANSWER_WITHIN_SECONDS = 20
#: The group of a ticket that has no value for the grouping field.
NO_VALUE = "(none)"
ALL = "all"


class GroupBy(StrEnum):
    ALL = "all"
    UNIT = "unit"
    LEVEL = "level"
    LINE = "line"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def local_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def period_key(moment: datetime, period: Period, tz: tzinfo) -> str:
    """``2026-03-05`` (day), ``2026-W10`` (ISO week) or ``2026-03`` (month), local time."""
    day = local_day(moment, tz)
    if period is Period.DAY:
        return day.isoformat()
    if period is Period.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"


def month_range(first: date, last: date) -> list[str]:
    """Every month from ``first``'s to ``last``'s, as ``YYYY-MM``."""
    months: list[str] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of the values
    at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class ServiceMetrics:
    #: The unit, level or line (or ``all``); :data:`NO_VALUE` for tickets without one.
    group: str
    #: The day, week or month key, or ``""`` when the report is not split by period.
    period: str
    calls: int
    offered: int
    answered: int
    abandoned: int
    answered_within: int
    answer_within_seconds: float
    service_level: float | None
    answer_rate: float | None
    abandon_rate: float | None
    average_wait: float | None
    p90_wait: float | None
    average_talk: float | None
    due: int
    resolved_on_time: int
    on_time_rate: float | None
    rated: int
    satisfied: int
    satisfaction_rate: float | None


def measure(
    records: Iterable[TicketRecord],
    *,
    now: datetime,
    answer_within: float = DEFAULT_ANSWER_WITHIN_SECONDS,
    group: str = ALL,
    period: str = "",
) -> ServiceMetrics:
    """The metrics of one group of records (see the module's definitions)."""
    calls = offered = answered = abandoned = within = due = on_time = rated = satisfied = 0
    waits: list[float] = []
    talks: list[float] = []
    for record in records:
        calls += 1
        disposition = record.disposition
        if disposition is not Disposition.NOT_OFFERED:
            offered += 1
            if record.wait_seconds is not None:
                waits.append(record.wait_seconds)
        if disposition is Disposition.ANSWERED:
            answered += 1
            if record.wait_seconds is not None and record.wait_seconds <= answer_within:
                within += 1
            if record.talk_seconds is not None:
                talks.append(record.talk_seconds)
        elif disposition is Disposition.ABANDONED:
            abandoned += 1
        if record.is_due(now):
            due += 1
            on_time += record.resolved_on_time()
        if record.rating is not None:
            rated += 1
            satisfied += record.satisfied
    return ServiceMetrics(
        group=group,
        period=period,
        calls=calls,
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        answered_within=within,
        answer_within_seconds=answer_within,
        service_level=ratio(within, offered),
        answer_rate=ratio(answered, offered),
        abandon_rate=ratio(abandoned, offered),
        average_wait=mean(waits),
        p90_wait=percentile(waits, 0.9),
        average_talk=mean(talks),
        due=due,
        resolved_on_time=on_time,
        on_time_rate=ratio(on_time, due),
        rated=rated,
        satisfied=satisfied,
        satisfaction_rate=ratio(satisfied, rated),
    )


def _group_of(by: GroupBy) -> Callable[[TicketRecord], str]:
    if by is GroupBy.ALL:
        return lambda _record: ALL
    field = by.value

    def group(record: TicketRecord) -> str:
        value = getattr(record, field)
        return str(value) if value else NO_VALUE

    return group


def service_metrics(
    records: Iterable[TicketRecord],
    *,
    now: datetime,
    tz: tzinfo,
    by: GroupBy = GroupBy.ALL,
    period: Period | None = None,
    answer_within: float = DEFAULT_ANSWER_WITHIN_SECONDS,
    groups: Iterable[str] = (),
) -> list[ServiceMetrics]:
    """One row per group (and per period when ``period`` is given), sorted by group then
    period. ``groups`` are listed even without tickets (the lines of routing, say), when the
    report is not split by period."""
    group_of = _group_of(by)
    buckets: dict[tuple[str, str], list[TicketRecord]] = defaultdict(list)
    for record in records:
        when = period_key(record.created_at, period, tz) if period else ""
        buckets[(group_of(record), when)].append(record)
    if period is None:
        for group in groups:
            buckets.setdefault((group, ""), [])
    return [
        measure(bucket, now=now, answer_within=answer_within, group=group, period=when)
        for (group, when), bucket in sorted(buckets.items())
    ]


# -- line usage, as the essay counted Jinhua's 170+ lines --------------------------------


@dataclass(frozen=True)
class UsageThresholds:
    busy: int = 10_000
    used: int = 1_000
    idle: int = 10


@dataclass(frozen=True)
class LineUsage:
    line: str
    #: (month, calls) for every month of the report, zeros included.
    monthly: tuple[tuple[str, int], ...]
    total: int
    average_per_month: float
    months_under_used: int
    months_under_idle: int
    share_months_under_used: float
    share_months_under_idle: float


@dataclass(frozen=True)
class LineUsageReport:
    months: tuple[str, ...]
    lines: tuple[LineUsage, ...]
    thresholds: UsageThresholds
    #: Lines by their average month, as the essay put it ("4 took over 10,000 calls a
    #: month, 12 over 1,000, 90 % under 1,000, 43 % single-digit").
    lines_over_busy: int
    lines_over_used: int
    share_lines_under_used: float | None
    share_lines_under_idle: float | None


def line_usage(
    records: Iterable[TicketRecord],
    *,
    tz: tzinfo,
    lines: Iterable[str] = (),
    months: Sequence[str] | None = None,
    thresholds: UsageThresholds = UsageThresholds(),
) -> LineUsageReport:
    """Calls per month per line. ``lines`` (the numbers routing answers) are listed even
    without a call; ``months`` default to every month from the first call to the last."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    days: list[date] = []
    for record in records:
        day = local_day(record.created_at, tz)
        days.append(day)
        counts[record.line or NO_VALUE][f"{day.year:04d}-{day.month:02d}"] += 1
    for line in lines:
        counts.setdefault(line, defaultdict(int))
    if months is None:
        months = month_range(min(days), max(days)) if days else []
    usage: list[LineUsage] = []
    for line in sorted(counts):
        per_month = counts[line]
        monthly = tuple((month, per_month.get(month, 0)) for month in months)
        values = [calls for _, calls in monthly]
        under_used = sum(calls < thresholds.used for calls in values)
        under_idle = sum(calls < thresholds.idle for calls in values)
        usage.append(
            LineUsage(
                line=line,
                monthly=monthly,
                total=sum(values),
                average_per_month=sum(values) / len(values) if values else 0.0,
                months_under_used=under_used,
                months_under_idle=under_idle,
                share_months_under_used=under_used / len(values) if values else 0.0,
                share_months_under_idle=under_idle / len(values) if values else 0.0,
            )
        )
    averages = [entry.average_per_month for entry in usage]
    return LineUsageReport(
        months=tuple(months),
        lines=tuple(usage),
        thresholds=thresholds,
        lines_over_busy=sum(avg > thresholds.busy for avg in averages),
        lines_over_used=sum(avg > thresholds.used for avg in averages),
        share_lines_under_used=_share(averages, lambda avg: avg < thresholds.used),
        share_lines_under_idle=_share(averages, lambda avg: avg < thresholds.idle),
    )


def _share(values: Sequence[float], test: Callable[[float], bool]) -> float | None:
    return sum(test(value) for value in values) / len(values) if values else None
