"""Properties of the router over generated cities of every shape."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.home import Home
from ivr.routing import (
    LANGUAGES,
    NobodyAvailable,
    RoutePlan,
    RouteRequest,
    RoutingTables,
    decide,
    level_rank,
    load_routing,
    queue_name,
)
from ivr.routing.generate import generate_city, generate_routing_data


@lru_cache(maxsize=64)
def city(communities: int, seed: int) -> RoutingTables:
    return generate_city(communities, seed)


class RandomAvailability:
    """Each queue independently staffed or empty, the same answer every time it is asked."""

    def __init__(self, seed: int, staffed: float) -> None:
        self.seed = seed
        self.staffed = staffed

    def available(self, queue: str) -> int:
        rng = random.Random(f"{self.seed}/{queue}")
        return rng.randint(1, 3) if rng.random() < self.staffed else 0


def on_duty(tables: RoutingTables, unit: str, now: datetime) -> bool:
    return tables.units[unit].hours.contains(now.astimezone(tables.timezone))


cities = st.tuples(st.integers(1, 80), st.integers(0, 10_000))
moments = st.integers(0, 7 * 24 * 60 - 1).map(
    lambda minute: datetime(2024, 6, 3, tzinfo=UTC) + timedelta(minutes=minute))


@settings(max_examples=150, deadline=None)
@given(
    shape=cities,
    pick=st.integers(0, 10**9),
    category=st.sampled_from([None, "consultation", "help", "complaint", "suggestion",
                              "praise", "consumer", "health", "environment", "urban", "mayor",
                              "emergency"]),
    language=st.sampled_from(LANGUAGES),
    now=moments,
    priority=st.integers(0, 3),
    availability_seed=st.integers(0, 1000),
    staffed=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    preset=st.sampled_from([None, None, "amr", "health", "water"]),
)
def test_every_call_gets_a_plan_or_an_explicit_no(
    shape: tuple[int, int], pick: int, category: str | None, language: str, now: datetime,
    priority: int, availability_seed: int, staffed: float, preset: str | None,
) -> None:
    tables = city(*shape)
    territories = sorted(tables.territorial_codes)
    location = territories[pick % len(territories)]
    agents = RandomAvailability(availability_seed, staffed)
    request = RouteRequest(location, category, language, now, priority, preset, "12345")

    decision = decide(tables, request, agents)

    def takes_call(unit: str) -> bool:
        return on_duty(tables, unit, now) and agents.available(queue_name(unit, language)) > 0

    if isinstance(decision, NobodyAvailable):
        assert decision.reason
        assert not any(takes_call(unit) for unit in decision.tried)
        # The city takes every category in both languages around the clock.
        assert not takes_call(tables.city)
        return
    assert isinstance(decision, RoutePlan)
    units = [hop.unit for hop in decision.hops]
    assert units, "a plan has at least one hop"
    assert len(set(units)) == len(units), "overflow never loops"
    for lower, upper in itertools.pairwise(units):
        assert upper in tables.chains[lower][1:], "each overflow goes to an ancestor"
        assert level_rank(tables.units[upper].level) >= level_rank(tables.units[lower].level)
    for hop in decision.hops:
        unit = tables.units[hop.unit]
        assert takes_call(hop.unit)
        assert unit.handles(category, language)
        assert (hop.level, hop.queue, hop.timeout_seconds) == (
            unit.level, queue_name(unit.code, language), unit.queue.queue_timeout)
    if takes_call(tables.city):
        assert units[-1] == tables.city, "overflow ends at the city"
    if decision.rule == "default":
        first = tables.units[units[0]]
        assert first.kind == "government"
        lower_candidates = [
            code for code in tables.covering[location]
            if level_rank(tables.units[code].level) < level_rank(first.level)
            and tables.units[code].kind == "government"
            and tables.units[code].handles(category, language)
        ]
        assert not any(takes_call(code) for code in lower_candidates), (
            "the lowest unit that can take the call gets it first")


@settings(max_examples=20, deadline=None)
@given(shape=cities)
def test_generated_cities_are_sound(shape: tuple[int, int]) -> None:
    tables = city(*shape)
    assert sum(1 for u in tables.units.values() if u.level == "community" and u.territorial) == (
        shape[0])
    for code, chain in tables.chains.items():
        assert chain[0] == code and chain[-1] == tables.city
        assert len(set(chain)) == len(chain)


def test_a_generated_city_written_as_yaml_loads_the_same(tmp_path: Path) -> None:
    routing = tmp_path / "routing"
    routing.mkdir()
    for name, content in generate_routing_data(120, 3).items():
        (routing / name).write_text(yaml.safe_dump(content, allow_unicode=True),
                                    encoding="utf-8")
    loaded = load_routing(Home(tmp_path))
    generated = city(120, 3)
    assert dict(loaded.units) == dict(generated.units)
    assert dict(loaded.agents) == dict(generated.agents)
    assert loaded.rules == generated.rules
    assert dict(loaded.covering) == dict(generated.covering)


def test_five_thousand_communities() -> None:
    tables = generate_city(5000, 1)
    assert len(tables.territorial_codes) > 5000
    now = datetime(2024, 6, 3, 2, tzinfo=UTC)
    plan = decide(tables, RouteRequest("c4999", "help", "zh", now),
                  RandomAvailability(1, 1.0))
    assert isinstance(plan, RoutePlan)
    assert plan.hops[-1].unit == "city"
