"""Hotspot warning (热点预警, issue 9 part 5): unusual rises of tickets of one category in one
place, against that place's own history.

The method, chosen to be explained to a supervisor in one breath:

1. Count tickets per (place, category, local day). A ticket counts in its location (a
   territorial unit) and in every place above it: a community's ticket is also its street's
   and its district's. Places are those of ``levels`` (district, street, community).
2. The *usual* number for a day is the mean of the same series over the previous
   ``baseline_days`` days (4 whole weeks by default), leaving out the days that were
   themselves hotspots, so a rise does not hide itself by raising its own baseline. It is
   scaled by the weekday's share of the city's calls over the same weeks (Mondays may bring
   1.3 times an average day) and never taken below ``floor_per_day``.
3. The day is a hotspot when its count is at least ``min_count`` and ``min_ratio`` times the
   usual number, and a Poisson count with the usual mean would reach it with probability
   below ``alpha``. The score is ``-log10`` of that probability: 4 means one chance in 10,000.

No alarm is raised before a series has ``min_history_days`` days of history. Nothing here reads
a clock or a file.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from typing import Any

from ivr.reports.metrics import local_day
from ivr.reports.records import TicketRecord
from ivr.routing.tables import RoutingTables
from ivr.tickets.store import TicketDayKey

HOTSPOT_ALARM_KIND = "hotspot"
DEFAULT_LEVELS: tuple[str, ...] = ("district", "street", "community")


@dataclass(frozen=True)
class PlaceTree:
    """The territorial hierarchy: place -> parent (None at the top) and place -> level."""

    parents: Mapping[str, str | None]
    levels: Mapping[str, str]

    def lineage(self, place: str) -> tuple[str, ...]:
        """The place and every place above it, lowest first; () for an unknown place."""
        chain: list[str] = []
        current: str | None = place
        while current is not None and current in self.parents and current not in chain:
            chain.append(current)
            current = self.parents[current]
        return tuple(chain)

    def is_within(self, place: str, root: str) -> bool:
        return root in self.lineage(place)

    def within(self, root: str) -> tuple[str, ...]:
        """Every place that lies within ``root``, ``root`` included (none for an unknown one)."""
        return tuple(place for place in self.parents if self.is_within(place, root))

    def related(self, first: str, second: str) -> bool:
        """One place lies within the other (or they are the same)."""
        return self.is_within(first, second) or self.is_within(second, first)


def places_from_routing(routing: RoutingTables) -> PlaceTree:
    territories = {code: unit for code, unit in routing.units.items() if unit.territorial}
    return PlaceTree(
        parents={
            code: unit.parent if unit.parent in territories else None
            for code, unit in territories.items()
        },
        levels={code: unit.level for code, unit in territories.items()},
    )


@dataclass(frozen=True)
class HotspotSettings:
    baseline_days: int = 28
    min_history_days: int = 14
    alpha: float = 1e-4
    min_count: int = 3
    min_ratio: float = 2.0
    floor_per_day: float = 0.2
    levels: tuple[str, ...] = DEFAULT_LEVELS

    def __post_init__(self) -> None:
        if self.baseline_days < 7 or self.baseline_days % 7:
            raise ValueError("baseline_days must be whole weeks (7, 14, 28...)")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        if self.min_count < 1 or self.min_ratio < 1 or self.floor_per_day <= 0:
            raise ValueError("min_count and min_ratio must be at least 1, floor_per_day above 0")


DEFAULT_HOTSPOT_SETTINGS = HotspotSettings()


@dataclass(frozen=True)
class Hotspot:
    place: str
    level: str
    category: str
    day: date
    count: int
    #: The usual number of such tickets on such a day (see the module's method).
    baseline: float
    #: -log10 of the probability of at least ``count`` tickets on a usual day.
    score: float
    #: The tickets behind the count; empty straight out of :func:`detect_hotspots_in_counts`.
    ticket_ids: tuple[str, ...]


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean), accurate for tiny tails too."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if count <= mean:
        term = math.exp(-mean)
        below = term
        for k in range(1, count):
            term *= mean / k
            below += term
        return max(0.0, 1.0 - below)
    term = math.exp(-mean + count * math.log(mean) - math.lgamma(count + 1))
    tail, k = 0.0, count
    while term > tail * 1e-15 and k < count + 10_000:
        tail += term
        k += 1
        term *= mean / k
    return min(1.0, tail)


#: How many tickets were opened per location, category and local day: the shape the ticket
#: store counts in (:meth:`ivr.tickets.store.TicketStore.ticket_counts_per_day`).
TicketCounts = Mapping[TicketDayKey, int]
#: Tickets per local day of one (place, category).
Series = dict[date, int]


def ticket_ids_per_day(
    records: Iterable[TicketRecord], *, tz: tzinfo
) -> dict[TicketDayKey, list[str]]:
    """The records' ids per location, category and local day: with ``len`` of each, the
    counts the detector works from."""
    ids: dict[TicketDayKey, list[str]] = defaultdict(list)
    for record in records:
        day = local_day(record.created_at, tz)
        ids[TicketDayKey(record.location, record.category, day)].append(record.id)
    return ids


def daily_series(
    counts: TicketCounts, places: PlaceTree, *, levels: Sequence[str] = DEFAULT_LEVELS
) -> tuple[dict[tuple[str, str], Series], dict[date, int]]:
    """Tickets per (place, category) per local day, rolled up the hierarchy, and the number
    of tickets per day over the whole city (for the weekday profile)."""
    series: dict[tuple[str, str], Series] = defaultdict(lambda: defaultdict(int))
    totals: dict[date, int] = defaultdict(int)
    wanted = set(levels)
    for (location, category, day), count in counts.items():
        totals[day] += count
        if not category or not location:
            continue
        for place in places.lineage(location):
            if places.levels.get(place) in wanted:
                series[(place, category)][day] += count
    return series, totals


def weekday_factors(
    totals: Mapping[date, int], days: Iterable[date], window: int
) -> dict[date, float]:
    """For each day: the mean count of its weekday over the previous ``window`` days / the
    mean count of those days (1.0 while there is no history)."""
    if not totals:
        return {day: 1.0 for day in days}
    first = min(totals)
    factors: dict[date, float] = {}
    for day in days:
        past = [day - timedelta(days=k) for k in range(1, window + 1)]
        past = [d for d in past if d >= first]
        overall = sum(totals.get(d, 0) for d in past) / len(past) if past else 0.0
        same = [totals.get(d, 0) for d in past if d.weekday() == day.weekday()]
        if overall <= 0 or not same:
            factors[day] = 1.0
        else:
            factors[day] = (sum(same) / len(same)) / overall
    return factors


def detect_hotspots(
    records: Iterable[TicketRecord],
    places: PlaceTree,
    *,
    tz: tzinfo,
    settings: HotspotSettings = DEFAULT_HOTSPOT_SETTINGS,
    since: date | None = None,
    until: date | None = None,
) -> list[Hotspot]:
    """Hotspots on the days from ``since`` to ``until`` (both included; default: all),
    judged against the history the records give before them; highest score first."""
    ids = ticket_ids_per_day(records, tz=tz)
    counts = {key: len(day_ids) for key, day_ids in ids.items()}
    return [
        with_ticket_ids(hotspot, ticket_ids_behind(hotspot, ids, places))
        for hotspot in detect_hotspots_in_counts(
            counts, places, settings=settings, since=since, until=until
        )
    ]


def ticket_ids_behind(
    hotspot: Hotspot, ids: Mapping[TicketDayKey, Sequence[str]], places: PlaceTree
) -> list[str]:
    """Among ``ids`` (see :func:`ticket_ids_per_day`), those the hotspot counted: of its
    category, opened that day in its place or any place within it."""
    return [
        ticket_id
        for location in places.within(hotspot.place)
        for ticket_id in ids.get(TicketDayKey(location, hotspot.category, hotspot.day), ())
    ]


def with_ticket_ids(hotspot: Hotspot, ticket_ids: Iterable[str]) -> Hotspot:
    return dataclasses.replace(hotspot, ticket_ids=tuple(sorted(ticket_ids)))


def detect_hotspots_in_counts(
    counts: TicketCounts,
    places: PlaceTree,
    *,
    settings: HotspotSettings = DEFAULT_HOTSPOT_SETTINGS,
    since: date | None = None,
    until: date | None = None,
) -> list[Hotspot]:
    """:func:`detect_hotspots` on ticket counts, whatever their number: the hotspots come
    without their tickets (``ticket_ids`` empty), see :func:`with_ticket_ids`."""
    series, totals = daily_series(counts, places, levels=settings.levels)
    if not totals:
        return []
    first_day = min(totals)
    candidates: dict[tuple[str, str], list[date]] = {
        key: sorted(day for day, count in days.items() if count >= settings.min_count)
        for key, days in series.items()
    }
    factors = weekday_factors(
        totals, {day for days in candidates.values() for day in days}, settings.baseline_days
    )
    found: list[Hotspot] = []
    for (place, category), days in series.items():
        hot_days: set[date] = set()
        for day in candidates[(place, category)]:
            if (day - first_day).days < settings.min_history_days:
                continue
            usual_days = [
                past
                for past in (day - timedelta(days=k) for k in range(1, settings.baseline_days + 1))
                if past >= first_day and past not in hot_days
            ]
            if not usual_days:
                continue
            usual = sum(days.get(d, 0) for d in usual_days) / len(usual_days)
            baseline = max(usual * factors[day], settings.floor_per_day)
            count = days[day]
            if count < settings.min_ratio * baseline:
                continue
            probability = poisson_tail(count, baseline)
            if probability >= settings.alpha:
                continue
            hot_days.add(day)
            if (since is None or day >= since) and (until is None or day <= until):
                found.append(
                    Hotspot(
                        place=place,
                        level=places.levels.get(place, ""),
                        category=category,
                        day=day,
                        count=count,
                        baseline=round(baseline, 3),
                        score=round(-math.log10(max(probability, 1e-300)), 2),
                        ticket_ids=(),
                    )
                )
    return sorted(found, key=lambda h: (-h.score, h.day, h.place, h.category))


def collapse_nested(hotspots: Sequence[Hotspot], places: PlaceTree) -> list[Hotspot]:
    """Leave out a hotspot when a place below it is hot for the same category on the same
    day: the lower one names the place more exactly (a street hot only because of one of its
    communities says nothing more)."""
    covered: set[tuple[str, date, str]] = set()
    for hotspot in hotspots:
        for above in places.lineage(hotspot.place)[1:]:
            covered.add((hotspot.category, hotspot.day, above))
    kept = [h for h in hotspots if (h.category, h.day, h.place) not in covered]
    return kept


def alarms_for(
    hotspots: Iterable[Hotspot], names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """``alarm.raised`` payloads (kind ``hotspot``) for the notifier, one per hotspot;
    ``names`` gives places' and categories' names for the message."""
    shown = names or {}
    alarms: list[dict[str, Any]] = []
    for hotspot in hotspots:
        place = shown.get(hotspot.place, hotspot.place)
        category = shown.get(hotspot.category, hotspot.category)
        alarms.append(
            {
                "kind": HOTSPOT_ALARM_KIND,
                "message": (
                    f"{hotspot.count} {category} tickets in {place} on {hotspot.day.isoformat()}"
                    f" (usually {hotspot.baseline:.1f})"
                ),
                "details": {
                    "place": hotspot.place,
                    "level": hotspot.level,
                    "category": hotspot.category,
                    "day": hotspot.day.isoformat(),
                    "count": hotspot.count,
                    "baseline": hotspot.baseline,
                    "score": hotspot.score,
                    "ticket_ids": list(hotspot.ticket_ids),
                },
            }
        )
    return alarms
