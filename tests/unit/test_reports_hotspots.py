"""Hotspot warning: the Poisson tail, a hand-made rise, roll-up and collapse, the alarm
payloads, and detection on the synthetic year with its known spikes."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from ivr.events import EVENTS
from ivr.home import Home
from ivr.reports.hotspots import (
    HOTSPOT_ALARM_KIND,
    HotspotSettings,
    PlaceTree,
    alarms_for,
    collapse_nested,
    detect_hotspots,
    detect_hotspots_in_counts,
    places_from_routing,
    poisson_tail,
    weekday_factors,
)
from ivr.reports.records import TicketRecord
from ivr.reports.synthetic import DEFAULT_SPIKES, measure_detection, synthetic_year
from ivr.routing.load import load_routing
from ivr.tickets.store import TicketDayKey

REPO = Path(__file__).resolve().parents[2]
START = date(2026, 1, 5)  # a Monday
PLACES = PlaceTree(
    parents={"city": None, "d1": "city", "s1": "d1", "c1": "s1", "c2": "s1"},
    levels={"city": "city", "d1": "district", "s1": "street", "c1": "community",
            "c2": "community"},
)  # fmt: skip


def on(day: int, place: str, category: str, n: int) -> TicketRecord:
    moment = datetime.combine(START + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
    return TicketRecord(id=f"{place}-{category}-{day}-{n}", created_at=moment + timedelta(hours=9),
                        location=place, category=category)  # fmt: skip


def steady_month_then(spike: int, *, place: str = "c1") -> list[TicketRecord]:
    """One noise ticket a day in c1 for 28 days, then ``spike`` on day 28."""
    records = [on(day, "c1", "noise", 0) for day in range(28)]
    return records + [on(28, place, "noise", n) for n in range(spike)]


def test_poisson_tail_known_values() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 1.0) == pytest.approx(1 - math.exp(-1))
    assert poisson_tail(3, 0.5) == pytest.approx(1 - math.exp(-0.5) * (1 + 0.5 + 0.125))
    assert poisson_tail(8, 1.0) == pytest.approx(1.0249e-5, rel=1e-3)
    exact = sum(math.exp(-10 + k * math.log(10) - math.lgamma(k + 1)) for k in range(50, 200))
    assert poisson_tail(50, 10.0) == pytest.approx(exact, rel=1e-9)
    assert poisson_tail(5, 0.0) == 0.0
    assert poisson_tail(20, 20.0) == pytest.approx(0.5297, rel=1e-3)


def test_a_rise_is_found_in_its_place_and_the_places_above() -> None:
    found = detect_hotspots(steady_month_then(8), PLACES, tz=UTC)
    assert [(h.place, h.level) for h in found] == [
        ("c1", "community"),
        ("d1", "district"),
        ("s1", "street"),
    ]
    hot = found[0]
    assert (hot.category, hot.day, hot.count, hot.baseline) == (
        "noise",
        START + timedelta(28),
        8,
        1.0,
    )
    assert hot.score == pytest.approx(-math.log10(poisson_tail(8, 1.0)), abs=0.01)
    assert hot.ticket_ids == tuple(sorted(f"c1-noise-28-{n}" for n in range(8)))
    assert [(h.place) for h in collapse_nested(found, PLACES)] == ["c1"]


def test_a_rise_in_a_quiet_neighbour_is_found_there() -> None:
    found = collapse_nested(detect_hotspots(steady_month_then(5, place="c2"), PLACES, tz=UTC),
                            PLACES)  # fmt: skip
    # c2 had no history: its usual number is the floor, 0.2 a day.
    assert [(h.place, h.count, h.baseline) for h in found] == [("c2", 5, 0.2)]


def test_no_alarm_for_usual_days_small_counts_or_without_history() -> None:
    assert detect_hotspots(steady_month_then(1), PLACES, tz=UTC) == []
    assert detect_hotspots(steady_month_then(3), PLACES, tz=UTC) == []  # p = 0.08
    early = [on(day, "c1", "noise", 0) for day in range(5)] + [
        on(5, "c1", "noise", n) for n in range(20)
    ]
    assert detect_hotspots(early, PLACES, tz=UTC) == []
    assert detect_hotspots([], PLACES, tz=UTC) == []


def test_settings_since_until_and_levels() -> None:
    records = steady_month_then(8)
    day = START + timedelta(28)
    assert detect_hotspots(records, PLACES, tz=UTC, since=day + timedelta(1)) == []
    assert detect_hotspots(records, PLACES, tz=UTC, until=day - timedelta(1)) == []
    only_streets = HotspotSettings(levels=("street",))
    assert [h.place for h in detect_hotspots(records, PLACES, tz=UTC, settings=only_streets)] == [
        "s1"
    ]
    strict = HotspotSettings(alpha=1e-6)
    assert detect_hotspots(records, PLACES, tz=UTC, settings=strict) == []
    with pytest.raises(ValueError, match="whole weeks"):
        HotspotSettings(baseline_days=10)


def test_a_hot_day_does_not_raise_its_own_baseline() -> None:
    records = steady_month_then(8) + [on(29, "c1", "noise", n) for n in range(8)]
    settings = HotspotSettings(levels=("community",))
    found = detect_hotspots(records, PLACES, tz=UTC, settings=settings)
    assert sorted(h.day for h in found) == [START + timedelta(28), START + timedelta(29)]


def test_weekday_factors() -> None:
    totals = {START + timedelta(k): (20 if k % 7 == 0 else 10) for k in range(35)}
    monday, tuesday = START + timedelta(28), START + timedelta(29)
    factors = weekday_factors(totals, [monday, tuesday, START], 28)
    average = (20 + 6 * 10) / 7
    assert factors[monday] == pytest.approx(20 / average)
    assert factors[tuesday] == pytest.approx(10 / average)
    assert factors[START] == 1.0  # no history yet


def test_alarm_payloads_fit_the_event_catalogue() -> None:
    found = collapse_nested(detect_hotspots(steady_month_then(8), PLACES, tz=UTC), PLACES)
    (alarm,) = alarms_for(found, {"c1": "东一社区", "noise": "噪音"})
    assert tuple(alarm) == EVENTS["alarm.raised"].fields
    assert alarm["kind"] == HOTSPOT_ALARM_KIND == "hotspot"
    assert alarm["message"] == "8 噪音 tickets in 东一社区 on 2026-02-02 (usually 1.0)"
    assert alarm["details"]["ticket_ids"][0] == "c1-noise-28-0"
    assert json.loads(json.dumps(alarm)) == alarm


def test_places_from_the_sample_routing() -> None:
    places = places_from_routing(load_routing(Home(REPO)))
    assert places.levels["c-east-1-1"] == "community"
    assert places.lineage("c-east-1-1") == ("c-east-1-1", "s-east-1", "d-east", "city")
    assert "amr" not in places.parents  # a department is no place
    assert places.lineage("nowhere") == ()


def test_the_synthetic_year_is_seeded() -> None:
    first = synthetic_year(7, days=30, spikes=())
    again = synthetic_year(7, days=30, spikes=())
    assert first.records == again.records
    assert synthetic_year(8, days=30, spikes=()).records != first.records


def test_detection_on_the_synthetic_year() -> None:
    year = synthetic_year()
    assert 20_000 < len(year.records) < 35_000
    report = measure_detection(year)
    delays = [d.delay_days for d in report.detections]
    assert len(delays) == len(DEFAULT_SPIKES)
    assert all(delay is not None and delay <= 2 for delay in delays), delays
    assert report.false_alarms_per_week < 0.3, report.false_alarms


def test_counts_find_the_hotspots_records_find() -> None:
    """The scheduler detects from the store's counts, the reports from records: the same
    hotspots, and the ids filled in afterwards are exactly the tickets each one counted."""

    def counted(records: list[TicketRecord], tz: tzinfo) -> Counter[TicketDayKey]:
        return Counter(
            TicketDayKey(r.location, r.category, r.created_at.astimezone(tz).date())
            for r in records
        )

    year = synthetic_year(days=120)  # Shanghai, tickets from 07:00 local: UTC days differ
    cases = [
        (steady_month_then(8), PLACES, UTC),
        (steady_month_then(5, place="c2"), PLACES, UTC),
        (steady_month_then(8) + [on(29, "c1", "noise", n) for n in range(8)], PLACES, UTC),
        (year.records, year.places, year.tz),
    ]
    settings = [HotspotSettings(), HotspotSettings(levels=("street",)),
                HotspotSettings(alpha=1e-2, min_ratio=1.5)]  # fmt: skip
    for records, places, tz in cases:
        for chosen in settings:
            from_records = detect_hotspots(records, places, tz=tz, settings=chosen)
            from_counts = detect_hotspots_in_counts(counted(records, tz), places, settings=chosen)
            assert from_counts == [dataclasses.replace(h, ticket_ids=()) for h in from_records]
            for hot in from_records:
                assert hot.ticket_ids == tuple(sorted(
                    r.id for r in records
                    if r.category == hot.category and r.location
                    and places.is_within(r.location, hot.place)
                    and r.created_at.astimezone(tz).date() == hot.day
                ))  # fmt: skip
                assert len(hot.ticket_ids) == hot.count
        assert detect_hotspots(records, places, tz=tz)
