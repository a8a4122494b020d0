"""The operators' /metrics figures: queue callers, agents per unit, calls, and the endpoint,
on hand-made state with a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from ivr.agent_board import LOGGED_OUT_REASON, AgentBoard, MemberState
from ivr.live_metrics import (
    FAILED_OUTCOME,
    AgentCounts,
    CallMetrics,
    HotlineCollector,
    MetricsServer,
    QueueCallers,
    agents_by_unit,
    service_levels,
)

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
UNITS = {"q-east-zh": "d-east", "q-east-en": "d-east", "q-west-zh": "d-west"}


def event(name: str, queue: str, caller: str) -> dict[str, str]:
    return {"event": name, "queue": queue, "uniqueid": caller}


def test_queue_callers_follow_join_leave_and_abandon() -> None:
    callers = QueueCallers()
    callers.apply(event("QueueCallerJoin", "q-east-zh", "a"), T0)
    callers.apply(event("QueueCallerJoin", "q-east-zh", "b"), T0 + timedelta(seconds=10))
    callers.apply(event("QueueCallerJoin", "q-west-zh", "c"), T0 + timedelta(seconds=20))
    now = T0 + timedelta(seconds=45)
    assert (callers.waiting("q-east-zh"), callers.longest_wait("q-east-zh", now)) == (2, 45)
    callers.apply(event("QueueCallerLeave", "q-east-zh", "a"), now)
    assert (callers.waiting("q-east-zh"), callers.longest_wait("q-east-zh", now)) == (1, 35)
    callers.apply(event("QueueCallerAbandon", "q-west-zh", "c"), now)
    callers.apply(event("QueueCallerLeave", "q-west-zh", "never-joined"), now)
    callers.apply({"event": "QueueCallerJoin", "queue": "q-west-zh"}, now)  # no uniqueid
    assert (callers.waiting("q-west-zh"), callers.longest_wait("q-west-zh", now)) == (0, 0)
    assert callers.queues() == {"q-east-zh"}
    callers.clear()
    assert callers.queues() == set()


def member(
    queue: str, agent: str, status: int, paused: bool = False, reason: str = ""
) -> MemberState:
    return MemberState(queue, f"PJSIP/{agent}", status, paused, reason)


def test_agents_count_once_per_unit_by_their_state() -> None:
    members = [
        # 1001 idle in both east queues: on duty and available, counted once.
        member("q-east-zh", "1001", 1), member("q-east-en", "1001", 1),
        # 1002 on a call: on duty, not available.
        member("q-east-zh", "1002", 2),
        # 1003 paused for a break in every east queue.
        member("q-east-zh", "1003", 1, True, "break"), member("q-east-en", "1003", 1, True),
        # 1004 logged out, 1005 phone not registered: not on duty.
        member("q-east-zh", "1004", 1, True, LOGGED_OUT_REASON),
        member("q-east-zh", "1005", 5),
        # 1006 paused in one queue, idle in the other: on duty, available, not paused.
        member("q-west-zh", "1006", 1), member("q-nobody-knows", "1007", 1),
    ]  # fmt: skip
    assert agents_by_unit(members, UNITS) == {
        "d-east": AgentCounts(on_duty=3, available=1, paused=1),
        "d-west": AgentCounts(on_duty=1, available=1, paused=0),
    }


def test_call_metrics_count_live_and_finished_calls() -> None:
    registry = CollectorRegistry()
    calls = CallMetrics(registry)
    with calls.live_call("12345", lambda: "answered"):
        assert registry.get_sample_value("ivr_calls_live") == 1
    with pytest.raises(RuntimeError), calls.live_call("12315", lambda: "answered"):
        raise RuntimeError("handler bug")
    assert registry.get_sample_value("ivr_calls_live") == 0
    total = "ivr_calls_total"
    assert registry.get_sample_value(total, {"line": "12345", "outcome": "answered"}) == 1
    assert registry.get_sample_value(total, {"line": "12315", "outcome": FAILED_OUTCOME}) == 1


def test_the_collector_reads_the_live_state_at_each_scrape() -> None:
    board = AgentBoard()
    board.replace_all([member("q-east-zh", "1001", 1), member("q-west-zh", "1006", 2)])
    callers = QueueCallers()
    callers.apply(event("QueueCallerJoin", "q-west-zh", "c"), T0)
    now = [T0 + timedelta(seconds=12)]
    collector = HotlineCollector(board, callers, lambda: UNITS, lambda: now[0], 20, 60)
    collector.levels = service_levels({
        "d-east": {"offered": 2, "answered_within": 1},
        "d-west": {"offered": 1, "answered_within": 1},
    })
    registry = CollectorRegistry()
    registry.register(collector)
    value = registry.get_sample_value
    assert value("ivr_queue_waiting_callers", {"queue": "q-west-zh"}) == 1
    assert value("ivr_queue_waiting_callers", {"queue": "q-east-en"}) == 0
    assert value("ivr_queue_longest_wait_seconds", {"queue": "q-west-zh"}) == 12
    now[0] += timedelta(seconds=30)
    assert value("ivr_queue_longest_wait_seconds", {"queue": "q-west-zh"}) == 42
    assert value("ivr_agents_on_duty", {"unit": "d-east"}) == 1
    assert value("ivr_agents_available", {"unit": "d-west"}) == 0
    assert value("ivr_service_level", {"unit": "all"}) == pytest.approx(2 / 3)
    assert value("ivr_service_level", {"unit": "d-east"}) == 0.5
    assert value("ivr_service_level_offered_calls", {"unit": "d-east"}) == 2
    assert value("ivr_service_level_answered_within_calls", {"unit": "all"}) == 2


async def test_the_endpoint_serves_metrics_and_nothing_else() -> None:
    registry = CollectorRegistry()
    CallMetrics(registry).live.inc()
    server = MetricsServer(registry, "127.0.0.1", 0)
    await server.start()

    async def ask(request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        writer.write_eof()
        answer = await reader.read()
        writer.close()
        return answer

    try:
        page = await ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert page.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\nivr_calls_live 1.0\n" in page
        assert (await ask(b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await ask(b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
        assert await ask(b"GET /metr") == b""  # cut short: no answer, the server goes on
        assert (await ask(b"GET /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200")
    finally:
        await server.close()
