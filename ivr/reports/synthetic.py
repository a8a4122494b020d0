"""A synthetic year of tickets with known spikes, to measure the hotspot detector.

The city: ``districts`` districts of ``streets`` streets of ``communities`` communities. Each
community has a size (0.5-1.5) and each category a daily rate per community of average size;
the expected count of a day is rate × size × season × weekday, where the season is a yearly
wave (summer +25 %, winter -25 %) and the weekday effect gives Mondays 1.25 and Sundays 0.6.
Counts are Poisson. On top, :data:`DEFAULT_SPIKES` add extra tickets at known places,
categories and days (a spike on a street or a district spreads over its communities).

:func:`measure_detection` runs the detector on the year and tells how many days after its
start each spike was first alarmed, and how many alarms matched no spike (per week).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from ivr.reports.hotspots import (
    DEFAULT_HOTSPOT_SETTINGS,
    Hotspot,
    HotspotSettings,
    PlaceTree,
    collapse_nested,
    detect_hotspots,
)
from ivr.reports.records import TicketRecord

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Tickets a day per category in a community of average size.
DEFAULT_RATES: Mapping[str, float] = {
    "urban": 0.8,
    "consultation": 0.7,
    "complaint": 0.6,
    "help": 0.5,
    "consumer": 0.3,
    "health": 0.3,
    "environment": 0.2,
    "suggestion": 0.1,
}
#: Monday first.
WEEKDAY_EFFECT: tuple[float, ...] = (1.25, 1.1, 1.05, 1.0, 1.0, 0.7, 0.6)
SEASON_AMPLITUDE = 0.25
_LINES: Mapping[str, str] = {"consumer": "12315", "health": "12320", "environment": "12369"}


@dataclass(frozen=True)
class Spike:
    place: str
    category: str
    #: Day index from the start of the year (0 = the first day).
    start_day: int
    days: int
    extra_per_day: float


@dataclass(frozen=True)
class SyntheticYear:
    records: tuple[TicketRecord, ...]
    places: PlaceTree
    spikes: tuple[Spike, ...]
    start: date
    days: int
    tz: tzinfo

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)


#: Places are named d<i>, s<i>-<j>, c<i>-<j>-<k> from 1.
DEFAULT_SPIKES: tuple[Spike, ...] = (
    Spike("c1-2-3", "environment", start_day=60, days=3, extra_per_day=6),
    Spike("c2-1-1", "complaint", start_day=103, days=2, extra_per_day=7),
    Spike("s2-1", "urban", start_day=150, days=2, extra_per_day=12),
    Spike("d1", "help", start_day=220, days=1, extra_per_day=25),
    Spike("c1-3-2", "consumer", start_day=300, days=4, extra_per_day=5),
    Spike("s1-1", "health", start_day=333, days=3, extra_per_day=8),
)


def city_places(districts: int, streets: int, communities: int) -> PlaceTree:
    parents: dict[str, str | None] = {"city": None}
    levels: dict[str, str] = {"city": "city"}
    for i in range(1, districts + 1):
        parents[f"d{i}"], levels[f"d{i}"] = "city", "district"
        for j in range(1, streets + 1):
            parents[f"s{i}-{j}"], levels[f"s{i}-{j}"] = f"d{i}", "street"
            for k in range(1, communities + 1):
                parents[f"c{i}-{j}-{k}"], levels[f"c{i}-{j}-{k}"] = f"s{i}-{j}", "community"
    return PlaceTree(parents=parents, levels=levels)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method, split in chunks so that exp(-mean) never underflows."""
    count = 0
    while mean > 0:
        chunk = min(mean, 30.0)
        mean -= chunk
        limit, product = math.exp(-chunk), rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
    return count


def season(day: date) -> float:
    """Yearly wave peaking late July."""
    return 1.0 + SEASON_AMPLITUDE * math.sin(2 * math.pi * (day.timetuple().tm_yday - 113) / 365)


def synthetic_year(
    seed: int = 12345,
    *,
    start: date = date(2025, 1, 1),
    days: int = 365,
    districts: int = 2,
    streets: int = 3,
    communities: int = 4,
    rates: Mapping[str, float] = DEFAULT_RATES,
    spikes: Sequence[Spike] = DEFAULT_SPIKES,
    tz: tzinfo = SHANGHAI,
) -> SyntheticYear:
    """A seeded year of tickets; the same seed gives the same tickets."""
    rng = random.Random(seed)
    places = city_places(districts, streets, communities)
    community_codes = sorted(code for code, level in places.levels.items() if level == "community")
    size = {code: rng.uniform(0.5, 1.5) for code in community_codes}
    for spike in spikes:
        if spike.place not in places.parents:
            raise ValueError(f"spike place {spike.place!r} is not in the synthetic city")
    records: list[TicketRecord] = []

    def add(community: str, category: str, day: date) -> None:
        seconds = rng.uniform(7 * 3600, 22 * 3600)
        local = datetime.combine(day, time(), tzinfo=tz) + timedelta(seconds=seconds)
        created = local.astimezone(UTC)
        answered = rng.random() < 0.85
        wait = round(rng.expovariate(1 / 15), 1)
        records.append(
            TicketRecord(
                id=f"S{day:%Y%m%d}-{len(records) + 1:06d}",
                created_at=created,
                line=_LINES.get(category, "12345") if rng.random() < 0.3 else "12345",
                category=category,
                location=community,
                unit=places.parents[community],
                level="street",
                outcome="answered" if answered else "abandoned",
                answered_at=created + timedelta(seconds=wait) if answered else None,
                wait_seconds=wait,
                talk_seconds=round(rng.uniform(60, 400), 1) if answered else None,
                route_hops=1,
            )
        )

    for index in range(days):
        day = start + timedelta(days=index)
        level = season(day) * WEEKDAY_EFFECT[day.weekday()]
        for community in community_codes:
            for category, rate in rates.items():
                for _ in range(_poisson(rng, rate * size[community] * level)):
                    add(community, category, day)
        for spike in spikes:
            if spike.start_day <= index < spike.start_day + spike.days:
                inside = [c for c in community_codes if places.is_within(c, spike.place)]
                for _ in range(_poisson(rng, spike.extra_per_day)):
                    add(rng.choice(inside), spike.category, day)
    records.sort(key=lambda record: record.created_at)
    return SyntheticYear(
        records=tuple(records),
        places=places,
        spikes=tuple(spikes),
        start=start,
        days=days,
        tz=tz,
    )


@dataclass(frozen=True)
class SpikeDetection:
    spike: Spike
    first_alarm: date | None
    #: Days from the spike's first day to its first alarm (0: the same day); None if missed.
    delay_days: int | None


@dataclass(frozen=True)
class DetectionReport:
    detections: tuple[SpikeDetection, ...]
    alarms: int
    false_alarms: tuple[Hotspot, ...]
    weeks: float

    @property
    def missed(self) -> int:
        return sum(d.delay_days is None for d in self.detections)

    @property
    def max_delay_days(self) -> int | None:
        delays = [d.delay_days for d in self.detections if d.delay_days is not None]
        return max(delays) if delays else None

    @property
    def false_alarms_per_week(self) -> float:
        return len(self.false_alarms) / self.weeks if self.weeks else 0.0


def measure_detection(
    year: SyntheticYear,
    *,
    settings: HotspotSettings = DEFAULT_HOTSPOT_SETTINGS,
    collapse: bool = True,
    grace_days: int = 2,
) -> DetectionReport:
    """Run the detector over ``year``. An alarm belongs to a spike when it has the spike's
    category, its place lies within the spike's or contains it, and its day falls from the
    spike's first day to ``grace_days`` after its last; every other alarm is a false one.
    Weeks are counted from the first day an alarm could be raised (after the history the
    detector needs)."""
    hotspots = detect_hotspots(year.records, year.places, tz=year.tz, settings=settings)
    if collapse:
        hotspots = collapse_nested(hotspots, year.places)

    def belongs(hotspot: Hotspot, spike: Spike) -> bool:
        first = year.day(spike.start_day)
        last = year.day(spike.start_day + spike.days - 1 + grace_days)
        return (
            hotspot.category == spike.category
            and first <= hotspot.day <= last
            and year.places.related(hotspot.place, spike.place)
        )

    detections: list[SpikeDetection] = []
    for spike in year.spikes:
        days = sorted(h.day for h in hotspots if belongs(h, spike))
        first_alarm = days[0] if days else None
        delay = (first_alarm - year.day(spike.start_day)).days if first_alarm else None
        detections.append(SpikeDetection(spike, first_alarm, delay))
    false_alarms = tuple(
        sorted(
            (h for h in hotspots if not any(belongs(h, spike) for spike in year.spikes)),
            key=lambda h: (h.day, h.place, h.category),
        )
    )
    watched_days = max(year.days - settings.min_history_days, 0)
    return DetectionReport(
        detections=tuple(detections),
        alarms=len(hotspots),
        false_alarms=false_alarms,
        weeks=watched_days / 7,
    )
