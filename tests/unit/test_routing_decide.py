"""The router on the sample routing/ of the repository: table-driven."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr.home import Home
from ivr.routing import (
    NobodyAvailable,
    RoutePlan,
    RouteRequest,
    RoutingTables,
    Rule,
    asterisk_view,
    decide,
    load_routing,
    queue_name,
)

REPO = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
MON_10 = datetime(2024, 6, 3, 10, 0, tzinfo=CST)
MON_23 = datetime(2024, 6, 3, 23, 0, tzinfo=CST)
MON_21 = datetime(2024, 6, 3, 21, 0, tzinfo=CST)
SAT_10 = datetime(2024, 6, 8, 10, 0, tzinfo=CST)
SUN_10 = datetime(2024, 6, 9, 10, 0, tzinfo=CST)


class Everyone:
    """Every queue has someone logged in."""

    def available(self, queue: str) -> int:
        return 1


class Counts:
    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts

    def available(self, queue: str) -> int:
        return self.counts.get(queue, 0)


@pytest.fixture(scope="module")
def tables() -> RoutingTables:
    return load_routing(Home(REPO))


def members_logged_in(tables: RoutingTables) -> Counts:
    queues, _ = asterisk_view(tables)
    return Counts({q.name: len(q.members) for q in queues})


ROUTES = [
    # location, category, language, now, priority, preset, line, expected hops, rule
    ("c-east-1-1", "consultation", "zh", MON_10, 0, None, "12345",
     ["c-east-1-1", "s-east-1", "d-east", "city"], "default"),
    ("c-east-1-1", "help", "zh", MON_10, 0, None, "12345",
     ["so-elderly", "c-east-1-1", "s-east-1", "d-east", "city"], "elderly-help"),
    ("c-east-1-2", "help", "zh", MON_10, 0, None, "12345",
     ["c-east-1-2", "s-east-1", "d-east", "city"], "default"),
    ("c-east-1-1", "complaint", "zh", MON_10, 0, None, "12345",
     ["s-east-1", "d-east", "city"], "default"),
    ("c-east-1-1", "consultation", "zh", SAT_10, 0, None, "12345",
     ["c-east-1-1", "d-east", "city"], "default"),
    ("c-east-1-1", "consultation", "zh", SUN_10, 0, None, "12345", ["city"], "default"),
    ("c-east-1-1", None, "zh", MON_10, 0, None, "12345",
     ["c-east-1-1", "s-east-1", "d-east", "city"], "default"),
    ("c-west-2-2", "consumer", "zh", MON_10, 0, None, "12345", ["amr", "city"], "default"),
    ("c-west-2-2", "consumer", "zh", SUN_10, 0, None, "12345", ["city"], "default"),
    ("c-west-2-2", "consumer", "zh", MON_10, 0, "amr", "12315", ["amr", "city"], "preset"),
    ("c-west-2-2", "health", "zh", MON_21, 0, "health", "12320", ["city"], "preset"),
    ("city", "mayor", "zh", MON_10, 0, "mayor-office", "88880000",
     ["mayor-office", "city"], "preset"),
    ("c-west-1-1", "urban", "zh", MON_10, 0, None, "12345",
     ["s-west-1", "d-west", "city"], "default"),
    ("c-west-1-1", "urban", "zh", MON_23, 0, None, "12345",
     ["water", "city"], "night-urban-to-water"),
    ("c-east-1-1", "consultation", "en", MON_10, 0, None, "12345",
     ["d-east", "city"], "default"),
    ("c-west-1-1", "consultation", "en", MON_10, 0, None, "12345", ["city"], "default"),
    ("c-east-1-1", "help", "zh", MON_10, 2, None, "12345", ["city"], "urgent-to-city"),
    # Unknown places and categories still reach a person: the city, unclassified.
    ("atlantis", "consultation", "zh", MON_10, 0, None, "12345", ["city"], "default"),
    ("c-east-1-1", "no-such-thing", "zh", SUN_10, 0, None, "12345", ["city"], "default"),
]


@pytest.mark.parametrize(
    ("location", "category", "language", "now", "priority", "preset", "line", "hops", "rule"),
    ROUTES,
)
def test_routes_with_everyone_logged_in(
    tables: RoutingTables, location: str, category: str | None, language: str,
    now: datetime, priority: int, preset: str | None, line: str, hops: list[str], rule: str,
) -> None:
    request = RouteRequest(location, category, language, now, priority, preset, line)
    decision = decide(tables, request, Everyone())
    assert isinstance(decision, RoutePlan)
    assert [hop.unit for hop in decision.hops] == hops
    assert decision.rule == rule
    assert all(hop.queue == queue_name(hop.unit, language) for hop in decision.hops)


def test_hops_carry_level_and_queue_timeout(tables: RoutingTables) -> None:
    decision = decide(tables, RouteRequest("c-east-1-1", "consultation", "zh", MON_10),
                      Everyone())
    assert isinstance(decision, RoutePlan)
    assert [(h.level, h.timeout_seconds) for h in decision.hops] == [
        ("community", 30), ("street", 60), ("district", 90), ("city", 300)]
    assert decision.hops[0].queue == "q-c-east-1-1-zh"


def test_units_without_logged_in_agents_are_skipped(tables: RoutingTables) -> None:
    # c-east-2-1 and its street s-east-2 have no agents: the district takes the call.
    decision = decide(tables, RouteRequest("c-east-2-1", "consultation", "zh", MON_10),
                      members_logged_in(tables))
    assert isinstance(decision, RoutePlan)
    assert [hop.unit for hop in decision.hops] == ["d-east", "city"]


def test_nobody_logged_in_anywhere(tables: RoutingTables) -> None:
    decision = decide(tables, RouteRequest("c-east-1-1", "consultation", "zh", MON_10),
                      Counts({}))
    assert decision == NobodyAvailable(
        "nobody on duty and available for consultation in zh",
        ("c-east-1-1", "s-east-1", "d-east", "city"),
    )


def test_english_with_no_english_agent(tables: RoutingTables) -> None:
    decision = decide(tables, RouteRequest("c-east-1-1", "consultation", "en", MON_10),
                      Counts({"q-city-zh": 2, "q-c-east-1-1-zh": 1}))
    assert isinstance(decision, NobodyAvailable)
    assert decision.tried == ("d-east", "city")


def test_rule_target_off_duty_overflows_to_its_parents(tables: RoutingTables) -> None:
    # The social organisation is open 08:00-20:00; at 21:00 its community is closed too.
    decision = decide(tables, RouteRequest("c-east-1-1", "help", "zh", MON_21), Everyone())
    assert isinstance(decision, RoutePlan)
    assert decision.rule == "elderly-help"
    assert [hop.unit for hop in decision.hops] == ["city"]


def test_now_is_read_in_the_city_time_zone(tables: RoutingTables) -> None:
    # 02:00 UTC on a Monday is 10:00 in Shanghai: the community is open.
    now = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)
    decision = decide(tables, RouteRequest("c-east-1-1", "consultation", "zh", now), Everyone())
    assert isinstance(decision, RoutePlan)
    assert decision.hops[0].unit == "c-east-1-1"


def test_naive_time_is_refused(tables: RoutingTables) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(tables, RouteRequest("city", None, "zh", datetime(2024, 6, 3, 10)), Everyone())


def test_line_rules_match_only_their_line(tables: RoutingTables) -> None:
    only_12320 = Rule("health-line-city", None, None, None, frozenset({"12320"}), None, None,
                      "city")
    with_rule = replace(tables, rules=(only_12320,))
    on_line = decide(with_rule, RouteRequest("c-east-1-1", "health", "zh", MON_10, 0, "health",
                                             "12320"), Everyone())
    other = decide(with_rule, RouteRequest("c-east-1-1", "health", "zh", MON_10, 0, None,
                                           "12345"), Everyone())
    assert isinstance(on_line, RoutePlan) and isinstance(other, RoutePlan)
    assert (on_line.rule, [h.unit for h in on_line.hops]) == ("health-line-city", ["city"])
    assert (other.rule, [h.unit for h in other.hops]) == ("default", ["health", "city"])

