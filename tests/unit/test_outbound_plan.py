"""The planner of calls to citizens: follow-ups and callbacks, calling hours, retries, free
agents. Pure code against a fake clock (plain datetimes) and the sample city's routing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest

from ivr.home import Home
from ivr.menu.verbs.rate import RatingName
from ivr.outbound.plan import (
    OutboundCall,
    RetryPolicy,
    callback_queue,
    dialable_number,
    plan_calls,
    settled_callbacks,
)
from ivr.routing import RoutingTables, load_routing
from ivr.routing.hours import parse_schedule
from ivr.tickets import OutboundKind, Rating

REPO = Path(__file__).resolve().parents[2]
#: 10:00 in the sample city (Asia/Shanghai): inside the default calling hours.
MORNING = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
#: 23:00 there: outside them.
NIGHT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
POLICY = RetryPolicy(parse_schedule({"daily": ["09:00-20:00"]}), 3, timedelta(minutes=30))


@dataclass(frozen=True)
class FakeTicket:
    id: str
    status: str = "resolved"
    caller: str | None = "13800000001"
    unit: str | None = "c-east-1-1"
    location: str | None = None
    language: str | None = "zh"
    ended_at: datetime | None = MORNING - timedelta(hours=1)
    callback_requested: bool = False
    callback_done_at: datetime | None = None
    followup_attempts: int = 0
    followup_last_at: datetime | None = None
    callback_attempts: int = 0
    callback_last_at: datetime | None = None


@pytest.fixture(scope="module")
def tables() -> RoutingTables:
    return load_routing(Home(REPO))


def plan(
    tables: RoutingTables,
    tickets: list[FakeTicket],
    now: datetime = MORNING,
    idle: dict[str, int] | None = None,
    busy: frozenset[str] = frozenset(),
) -> list[OutboundCall]:
    free = idle or {}
    return plan_calls(
        tickets,
        now=now,
        tables=tables,
        followup=POLICY,
        callbacks=POLICY,
        idle_agents=lambda queue: free.get(queue, 0),
        busy=busy,
    )


def test_a_resolved_ticket_is_followed_up_in_calling_hours_only(tables: RoutingTables) -> None:
    ticket = FakeTicket("T1")
    assert plan(tables, [ticket]) == [
        OutboundCall(OutboundKind.FOLLOW_UP, "T1", "13800000001", attempt=1)
    ]
    assert plan(tables, [ticket], now=NIGHT) == []


def test_follow_up_retries_after_the_interval_until_the_attempts_run_out(
    tables: RoutingTables,
) -> None:
    tried = FakeTicket("T1", followup_attempts=1, followup_last_at=MORNING - timedelta(minutes=10))
    assert plan(tables, [tried]) == []
    later = replace(tried, followup_last_at=MORNING - timedelta(minutes=30))
    assert [call.attempt for call in plan(tables, [later])] == [2]
    spent = replace(later, followup_attempts=3)
    assert plan(tables, [spent]) == []


def test_nothing_is_planned_for_tickets_not_resolved_busy_or_undialable(
    tables: RoutingTables,
) -> None:
    tickets = [
        FakeTicket("T1", status="assigned"),
        FakeTicket("T2", status="followed_up"),
        FakeTicket("T3", caller="anonymous"),
        FakeTicket("T4", caller="1380000;Hangup"),
        FakeTicket("T5"),
    ]
    assert plan(tables, tickets, busy=frozenset({"T5"})) == []


def test_a_callback_waits_for_an_idle_agent_of_the_tickets_unit(tables: RoutingTables) -> None:
    missed = FakeTicket("T1", status="accepted", callback_requested=True)
    assert plan(tables, [missed]) == []
    assert plan(tables, [missed], idle={"q-city-zh": 2}) == []
    assert plan(tables, [missed], idle={"q-c-east-1-1-zh": 1}) == [
        OutboundCall(OutboundKind.CALLBACK, "T1", "13800000001", 1, "q-c-east-1-1-zh")
    ]


def test_each_idle_agent_takes_one_callback_per_round(tables: RoutingTables) -> None:
    missed = [
        FakeTicket(f"T{n}", status="accepted", callback_requested=True, caller=f"1390000000{n}")
        for n in range(3)
    ]
    calls = plan(tables, missed, idle={"q-c-east-1-1-zh": 2})
    assert [call.ticket_id for call in calls] == ["T0", "T1"]


def test_callbacks_done_running_or_spent_are_not_repeated(tables: RoutingTables) -> None:
    idle = {"q-c-east-1-1-zh": 5}
    owed = FakeTicket("T1", status="accepted", callback_requested=True)
    assert plan(tables, [replace(owed, callback_done_at=MORNING)], idle=idle) == []
    assert plan(tables, [replace(owed, ended_at=None)], idle=idle) == []
    assert plan(tables, [replace(owed, status="merged")], idle=idle) == []
    assert plan(tables, [replace(owed, callback_attempts=3)], idle=idle) == []
    recent = replace(owed, callback_attempts=1, callback_last_at=MORNING - timedelta(minutes=5))
    assert plan(tables, [recent], idle=idle) == []
    assert plan(tables, [owed], idle=idle, now=NIGHT) == []


def test_a_switched_off_policy_plans_nothing_of_its_kind(tables: RoutingTables) -> None:
    calls = plan_calls(
        [FakeTicket("T1")],
        now=MORNING,
        tables=tables,
        followup=None,
        callbacks=POLICY,
        idle_agents=lambda _queue: 1,
    )
    assert calls == []


def test_callback_queue_falls_back_to_location_then_city_and_a_spoken_language(
    tables: RoutingTables,
) -> None:
    assert callback_queue(tables, FakeTicket("T1", unit=None, location="d-east")) == "q-d-east-zh"
    assert callback_queue(tables, FakeTicket("T1", unit=None, location=None)) == "q-city-zh"
    # The west district speaks no English: its Mandarin queue calls back.
    assert callback_queue(tables, FakeTicket("T1", unit="d-west", language="en")) == "q-d-west-zh"
    assert callback_queue(tables, FakeTicket("T1", unit="city", language="en")) == "q-city-en"


def test_dialable_numbers_are_digits_only() -> None:
    assert dialable_number("+8613800000001") == "8613800000001"
    assert dialable_number(" 13800000001 ") == "13800000001"
    for bad in (None, "", "anonymous", "12", "1380\r\n0000", "138@evil"):
        assert dialable_number(bad) is None


def test_the_rate_verb_knows_exactly_the_tickets_ratings() -> None:
    assert set(get_args(RatingName)) == {rating.value for rating in Rating}


def test_a_later_answered_call_settles_the_callback() -> None:
    ended = MORNING - timedelta(hours=1)
    missed = FakeTicket("T1", status="accepted", callback_requested=True, ended_at=ended)
    assert settled_callbacks([missed], {}) == []
    assert settled_callbacks([missed], {"13800000001": ended - timedelta(minutes=1)}) == []
    assert settled_callbacks([missed], {"13800000001": ended + timedelta(minutes=1)}) == ["T1"]
