"""Issue 8.3: the citizen hangs up at every point of a call (during the greeting, waiting in
a queue, while an agent's phone rings, while 110 rings) and the call still ends with exactly
one ticket telling what happened, and no error in the controller."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from hotline_stack import HotlineStack

from ivr.sipp.peers import PhoneProcess

#: Controller log lines that mean something went wrong (console or JSON renderer).
CONTROLLER_ERROR = re.compile(r"\[error|\[critical|\"level\": \"(error|critical)\"|Traceback")


def assert_no_controller_error(stack: HotlineStack) -> None:
    log = stack.controller_log()
    assert not CONTROLLER_ERROR.search(log), log


def phone_of(stack: HotlineStack, user: str) -> PhoneProcess:
    [phone] = [p for p in stack.phones.phones if p.user == user]
    return phone


async def hung_up_call(stack: HotlineStack, caller: str, keys: str, **options: Any) -> Any:
    """Place a call whose citizen gives up ``wait_timeout_seconds`` after the last key;
    return its ticket once ended, after checking it is the only one of the call."""
    citizen = stack.citizen("12345", caller, keys, **options)
    assert await citizen.run() == 0
    ticket = await stack.ticket_of(citizen)
    assert ticket is not None and ticket["ended_at"] is not None, ticket
    assert [t["id"] for t in await stack.tickets() if t["caller"] == caller] == [ticket["id"]]
    assert ticket["created_at"] < ticket["ended_at"]
    assert ticket["agent"] is None and ticket["answered_at"] is None
    return ticket


async def test_hang_up_during_the_greeting(hotline: HotlineStack) -> None:
    # Gone a second after the answer: the welcome prompt is still playing.
    ticket = await hung_up_call(
        hotline, "13900000801", "", first_key_delay_ms=0, wait_timeout_seconds=1
    )

    assert ticket["outcome"] == "caller_hung_up"
    # The welcome prompt belongs to the main menu, which heard no key.
    assert ticket["ivr_path"] == ["hotline_12345", "main_menu"]
    assert ticket["route_hops"] == [] and ticket["recording"] is None
    assert_no_controller_error(hotline)


async def test_hang_up_while_waiting_in_the_queue(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    # The west district's only agent is on a long call, so the next caller waits in the
    # queue without any phone ringing (app_queue rings a member only while it is free).
    stack: HotlineStack = await hotline_factory(talk_ms=40_000)
    busy = stack.citizen("12345", "13900000802", keys="12")
    first = asyncio.create_task(busy.run())
    async with asyncio.timeout(30):
        while not phone_of(stack, "1010").received_invites():  # noqa: ASYNC110 - a file SIPp writes
            await asyncio.sleep(0.2)

    ticket = await hung_up_call(stack, "13900000803", "12", wait_timeout_seconds=6)

    assert ticket["outcome"] == "abandoned" and ticket["callback_requested"] is True
    assert [(h["unit"], h["outcome"]) for h in ticket["route_hops"]] == [("d-west", "abandoned")]
    assert len(phone_of(stack, "1010").received_invites()) == 1  # never rang for this call
    assert_no_controller_error(stack)
    first.cancel()


async def test_hang_up_while_an_agent_phone_rings(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    stack: HotlineStack = await hotline_factory(silent=frozenset({"1009"}))

    ticket = await hung_up_call(stack, "13900000804", "11", wait_timeout_seconds=6)

    assert phone_of(stack, "1009").received_invites(), "the agent's phone never rang"
    assert ticket["outcome"] == "abandoned" and ticket["callback_requested"] is True
    assert [(h["unit"], h["outcome"]) for h in ticket["route_hops"]] == [("d-east", "abandoned")]
    assert_no_controller_error(stack)


async def test_hang_up_while_110_rings(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    # 110 rings long enough that the caller gives up before the supervisors are tried.
    stack: HotlineStack = await hotline_factory(
        settings={"emergency": {"answer_timeout_seconds": 60}}, centre_answers=False
    )

    # Key 0 once the menu surely listens (a loaded machine starts the AGI late), then a
    # wait long enough for the trunk to ring, far shorter than its answer timeout.
    ticket = await hung_up_call(
        stack, "13900000805", "0", first_key_delay_ms=2500, wait_timeout_seconds=8
    )

    assert phone_of(stack, "110").received_invites(), "the 110 centre never rang"
    assert ticket["emergency"] is True
    # Nobody at 110 took the call: not a hand-over, and not left without an outcome.
    assert ticket["outcome"] == "caller_hung_up"
    assert "emergency_answered_at" not in ticket["variables"]
    assert_no_controller_error(stack)
