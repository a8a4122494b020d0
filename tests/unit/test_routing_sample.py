"""The sample routing/ of the repository as other parts see it: Asterisk view, plain sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.home import Home
from ivr.routing import RoutingTables, asterisk_view, load_routing, queue_name

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> RoutingTables:
    return load_routing(Home(REPO))


def test_queue_names() -> None:
    assert queue_name("c-east-1-1", "zh") == "q-c-east-1-1-zh"


def test_asterisk_view(tables: RoutingTables) -> None:
    queues, agents = asterisk_view(tables)
    by_name = {queue.name: queue for queue in queues}
    assert len(by_name) == len(queues)
    assert by_name["q-city-zh"].members == ("1001", "1002")
    assert by_name["q-city-en"].members == ("1001",)
    assert by_name["q-d-east-en"].members == ("1009",)
    assert by_name["q-s-east-2-zh"].members == ()
    city = by_name["q-city-zh"]
    assert (city.strategy, city.ring_timeout, city.wrapup) == ("rrmemory", 15, 15)
    assert city.announce_position and city.announce_holdtime
    assert [a.id for a in agents] == [str(n) for n in range(1001, 1017)]
    for agent in agents:
        for language in agent.languages:
            assert agent.id in by_name[queue_name(agent.unit, language)].members
    assert {(a.id, a.unit, a.languages) for a in agents if "en" in a.languages} == {
        ("1001", "city", ("zh", "en")), ("1009", "d-east", ("zh", "en"))}


def test_plain_sets_for_other_validators(tables: RoutingTables) -> None:
    assert tables.category_codes == {
        "consultation", "help", "complaint", "suggestion", "praise", "consumer", "health",
        "environment", "urban", "mayor", "emergency"}
    assert {"city", "d-east", "d-west", "amr", "water", "so-elderly"} <= tables.unit_codes
    assert "amr" not in tables.territorial_codes
    assert {n: (line.entry, line.preset_category, line.preset_unit, line.emergency_required)
            for n, line in tables.lines.items()} == {
        "12345": ("hotline_12345", None, None, True),
        "12315": ("line_12315", "consumer", "amr", False),
        "12320": ("line_12320", "health", "health", True),
        "12369": ("line_12369", "environment", "env", True),
        "88880000": ("line_mayor", "mayor", "mayor-office", False),
    }
    assert tables.landing_dids["02160000100"] == "d-east"
    assert tables.known_callers["13800000001"] == "c-east-1-1"


def test_levels_and_kinds(tables: RoutingTables) -> None:
    levels: dict[str, int] = {}
    for unit in tables.units.values():
        if unit.territorial:
            levels[unit.level] = levels.get(unit.level, 0) + 1
    assert levels == {"city": 1, "district": 2, "street": 4, "community": 8}
    kinds = {unit.kind for unit in tables.units.values()}
    assert kinds == {"government", "utility", "social_organisation"}


def test_emergency_boundary(tables: RoutingTables) -> None:
    boundary = tables.emergency
    assert boundary is not None
    assert boundary.transfer_number == "110"
    assert len(boundary.to_110) == 8
    assert {item.category for item in boundary.from_110} <= tables.category_codes
    assert "noise" in {item.code for item in boundary.from_110}


def test_tables_are_immutable(tables: RoutingTables) -> None:
    with pytest.raises(TypeError):
        tables.units["x"] = tables.units["city"]  # type: ignore[index]
