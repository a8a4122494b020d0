"""Issue 6 on the real stack: a ticket per call under concurrent load, nothing lost when the
controller is killed or the database goes away, and the call's events on a real broker."""

from __future__ import annotations

import asyncio
import inspect
import json
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import mqtt_service
import pg_service
import pytest
from hotline_stack import HotlineStack

from ivr.stack import add_simulated_agents

#: Fifty agents of the east district behind one phone process: fifty calls talk at once.
EAST_POOL = [str(3001 + n) for n in range(50)]
#: The city's own agents for the fallback queue, which takes callers the controller lost.
CITY_POOL = [str(3101 + n) for n in range(20)]


def _pooled_east(root: Path) -> None:
    add_simulated_agents(root, "d-east", EAST_POOL)


async def _eventually(
    check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not await _value(check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.5)


async def test_fifty_concurrent_calls_make_fifty_tickets_and_fifty_recordings(
    hotline_factory: Any,
) -> None:
    hotline: HotlineStack = await hotline_factory(
        tweak=_pooled_east, pooled=frozenset(EAST_POOL), talk_ms=2000
    )
    citizens = [hotline.citizen("12345", f"1390100{n:04d}", keys="11") for n in range(50)]

    async def place(index: int) -> int:
        await asyncio.sleep(index * 0.05)  # fifty SIPp processes cannot all fork at one instant
        return await citizens[index].run()

    codes = await asyncio.gather(*(place(n) for n in range(50)))

    assert codes == [0] * 50
    east = {"1009", *EAST_POOL}
    assert all(citizen.answered_by() in east for citizen in citizens)
    tickets = [await hotline.ticket_of(citizen, timeout=20) for citizen in citizens]
    assert all(ticket is not None for ticket in tickets)
    assert len(await hotline.tickets()) == 50  # exactly one per call, none doubled
    by_call = {t["sip_call_id"]: t for t in tickets if t is not None}
    assert len(by_call) == 50 and len({t["linkedid"] for t in by_call.values()}) == 50
    for ticket in by_call.values():
        assert ticket["outcome"] == "answered" and ticket["agent"] in east
        assert ticket["ivr_path"][:3] == ["hotline_12345", "main_menu", "consultation"]
    recordings = {hotline.home.root / t["recording"] for t in by_call.values()}
    assert len(recordings) == 50
    assert all(path.stat().st_size > 1000 for path in recordings)


async def test_controller_killed_mid_load_tickets_still_equal_the_calls(
    hotline_factory: Any,
) -> None:
    def pools(root: Path) -> None:
        add_simulated_agents(root, "d-east", EAST_POOL[:20])
        add_simulated_agents(root, "city", CITY_POOL)

    hotline: HotlineStack = await hotline_factory(
        settings={"controller": {"reconcile_seconds": 2}},
        tweak=pools,
        pooled=frozenset(EAST_POOL[:20] + CITY_POOL),
        talk_ms=2000,
    )
    calls = 16
    citizens = [hotline.citizen("12345", f"1390200{n:04d}", keys="11") for n in range(calls)]

    async def place(index: int) -> int:
        await asyncio.sleep(index * 0.5)
        return await citizens[index].run()

    running = asyncio.gather(*(place(n) for n in range(calls)))
    await asyncio.sleep(2.5)  # five calls are in the menus
    hotline.stop_controller(signal.SIGKILL)
    await asyncio.sleep(3.0)  # six more arrive while nobody answers FastAGI
    hotline.start_controller()
    await hotline.wait_controller()
    codes = await running

    assert codes == [0] * calls  # every caller reached a person
    assert all(citizen.answered_by() is not None for citizen in citizens)
    callers = {citizen.caller for citizen in citizens}

    async def reconciled() -> bool:
        tickets = await hotline.tickets()
        return (
            {t["caller"] for t in tickets} == callers
            and all(t["ended_at"] is not None and t["agent"] is not None for t in tickets)
        )

    # The records of the lost calls settle for ten seconds before they are trusted.
    await _eventually(reconciled, 60, "tickets equal to the calls, each finished")
    tickets = await hotline.tickets()
    assert len(tickets) == calls
    assert len({t["linkedid"] for t in tickets}) == calls
    lost = [t for t in tickets if t["outcome"] == "fallback"]
    assert lost, "some calls must have gone through the dialplan's fallback"
    assert all(t["agent"] in CITY_POOL or t["agent"] in {"1001", "1002"} for t in lost)
    assert all(t["variables"].get("reconciled") == "cdr" for t in lost)
    assert "Traceback" not in hotline.controller_log()


@pytest.fixture
def private_postgres() -> Any:
    try:
        server = pg_service.PrivatePostgres()
        server.init()
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"no private PostgreSQL: {exc}", pytrace=False)
    yield server
    server.remove()


async def test_database_stopped_mid_call_the_tickets_arrive_when_it_returns(
    hotline_factory: Any, private_postgres: pg_service.PrivatePostgres
) -> None:
    hotline: HotlineStack = await hotline_factory(
        settings={"database": {"url": private_postgres.url}}, talk_ms=4000
    )
    during = hotline.citizen("12345", "13903000001", keys="11")
    first = asyncio.create_task(during.run())
    await asyncio.sleep(2.0)  # in the menus: its ticket is open
    await asyncio.to_thread(private_postgres.stop)
    assert await first == 0
    # Calls are not disturbed: this one, entirely in the outage, goes the same way.
    outage = hotline.citizen("12345", "13903000002", keys="11")
    assert await outage.run() == 0
    assert during.answered_by() == "1009" and outage.answered_by() == "1009"
    spool = hotline.home.var_dir / "spool"
    assert any(path.stat().st_size > 0 for path in spool.glob("*.jsonl"))

    await asyncio.to_thread(private_postgres.start)
    for citizen in (during, outage):
        ticket = await hotline.ticket_of(citizen, timeout=30)
        assert ticket is not None, f"no ticket for {citizen.caller} after the database returned"
        assert ticket["caller"] == citizen.caller
        assert ticket["agent"] == "1009" and ticket["outcome"] == "answered"
        assert ticket["ended_at"] is not None and ticket["recording"]
    assert len(await hotline.tickets()) == 2


async def test_a_subscriber_receives_a_real_calls_events_in_order(
    hotline_factory: Any, mosquitto_running: None
) -> None:
    prefix = f"ivrtest-{secrets.token_hex(4)}"
    hotline: HotlineStack = await hotline_factory(
        settings={"mqtt": {"host": mqtt_service.HOST, "port": mqtt_service.PORT,
                           "topic_prefix": prefix}}
    )
    received: list[dict[str, Any]] = []
    async with aiomqtt.Client(mqtt_service.HOST, mqtt_service.PORT) as subscriber:
        await subscriber.subscribe(f"{prefix}/calls/#", qos=1)
        await subscriber.subscribe(f"{prefix}/tickets/#", qos=1)

        async def collect() -> None:
            async for message in subscriber.messages:
                assert isinstance(message.payload, bytes | bytearray)
                received.append(json.loads(message.payload.decode("utf-8")))

        collecting = asyncio.create_task(collect())
        ticket = await hotline.call("12345", "13904000001", keys="11")
        await _eventually(
            lambda: _has(received, "call.ended"), 10, "call.ended on the broker"
        )
        # A supervisor's change from another process is announced by the controller too.
        assigned = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "--home", str(hotline.home.root), "tickets", "assign",
            ticket["id"], "d-east", "--actor", "1009",
        )
        assert await assigned.wait() == 0
        await _eventually(
            lambda: any(m["data"].get("action") == "assign" for m in received), 10,
            "the CLI's assignment on the broker",
        )
        collecting.cancel()

    linkedid, ticket_id = ticket["linkedid"], ticket["id"]
    of_call = [m for m in received if m["data"].get("linkedid") == linkedid
               or m["data"].get("ticket_id") == ticket_id]
    names = [m["event"] for m in of_call]
    call_events = [n for n in names if n.startswith("call.")]
    assert call_events == ["call.started", "call.ringing", "call.answered", "call.ended"]
    opened = next(m for m in of_call if m["event"] == "ticket.changed")
    assert opened["data"] == {"ticket_id": ticket_id, "from_status": None,
                              "to_status": "accepted", "action": "accept", "actor": "ivr"}
    started, ringing, answered, ended = (
        next(m for m in of_call if m["event"] == name) for name in call_events
    )
    assert started["data"] == {"linkedid": linkedid, "ticket_id": ticket_id, "line": "12345",
                               "caller": "13904000001"}
    assert ringing["data"]["agent"] == "1009" and ringing["data"]["unit"] == "d-east"
    assert ringing["data"]["ticket_id"] == ticket_id
    assert answered["data"]["agent"] == "1009"
    assert ended["data"]["outcome"] == "answered" and ended["data"]["talk_seconds"] > 0
    assign = next(m for m in of_call if m["data"].get("action") == "assign")
    assert assign["data"] == {"ticket_id": ticket_id, "from_status": "accepted",
                              "to_status": "assigned", "action": "assign", "actor": "1009"}
    seqs = [m["seq"] for m in of_call]
    assert seqs == sorted(seqs) and len({m["origin"] for m in of_call}) == 1


async def _value(result: Awaitable[bool] | bool) -> bool:
    return await result if inspect.isawaitable(result) else result


def _has(received: list[dict[str, Any]], event: str) -> bool:
    return any(m["event"] == event for m in received)
