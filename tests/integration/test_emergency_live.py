"""Issue 5: key 0 at the first menu reaches the 110 centre at once, with the caller's
number; when 110 cannot be reached the caller still reaches a person, first in line."""

from __future__ import annotations

import asyncio
import sys

from hotline_stack import HotlineStack

from ivr.ports import free_port


async def test_key_zero_reaches_the_110_centre_with_the_callers_number(
    hotline: HotlineStack,
) -> None:
    ticket = await hotline.call("12345", "13900000301", keys="0", first_key_delay_ms=800)

    assert ticket["emergency"] is True
    assert ticket["transferred_to"] == "110"
    assert ticket["outcome"] == "transferred_110"
    assert ticket["ivr_path"][:3] == ["hotline_12345", "main_menu", "emergency_110"]
    centre = hotline.phones.phones[-1]
    invites = centre.received_invites()
    assert len(invites) == 1
    assert "INVITE sip:110@" in invites[0]
    headers = {line.split(":", 1)[0].lower(): line for line in invites[0].splitlines()}
    assert "13900000301" in headers["from"]
    assert "13900000301" in headers["p-asserted-identity"]


async def test_110_unreachable_goes_to_the_supervisors_with_an_alarm(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    udp = __import__("socket").SOCK_DGRAM
    stack: HotlineStack = await hotline_factory(
        settings={
            "emergency": {
                "answer_timeout_seconds": 2,
                # An alternate nobody listens on: tried, then given up.
                "alternates": [{"host": "127.0.0.1", "port": free_port(udp)}],
            }
        },
        centre_answers=False,
    )

    ticket = await stack.call("12345", "13900000302", keys="0", first_key_delay_ms=800)

    assert ticket["emergency"] is True
    assert ticket["outcome"] == "answered"  # by a supervisor
    assert ticket["agent"] in {"1001", "1002"}
    assert "emergency_unreachable" in stack.controller_log() or "110 unreachable" in (
        stack.controller_log()
    )


async def test_110_hands_over_a_non_emergency_and_gets_its_own_back(hotline: HotlineStack) -> None:
    def from_police(code: str) -> tuple[str, ...]:
        return ("X-Police-Handover: 110", f"X-Handover-Category: {code}")

    noise, fire = await asyncio.gather(
        # Noise is 12345's (routing/emergency.yaml from_110 -> environment).
        hotline.call("12345", "13900000501", extra_headers=from_police("noise")),
        # Fire is 110's own: handed straight back to the 110 centre.
        hotline.call("12345", "13900000502", extra_headers=from_police("fire")),
    )

    assert noise["from_110"] is True
    assert noise["ivr_path"] == []  # no greeting, no menus
    assert noise["category"] == "environment"
    assert noise["outcome"] == "answered" and noise["agent"]
    assert noise["variables"]["handover_code"] == "noise"

    assert fire["from_110"] is True and fire["emergency"] is True
    assert fire["transferred_to"] == "110"
    centre = hotline.phones.phones[-1]
    assert any("13900000502" in invite for invite in centre.received_invites())


async def test_an_agent_hands_a_live_call_to_110(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    stack: HotlineStack = await hotline_factory(talk_ms=15000)
    citizen = stack.citizen("12345", "13900000601", keys="11")
    call = asyncio.create_task(citizen.run())
    for _ in range(200):  # until the east district's agent is talking to the caller
        ticket = await stack.ticket_of(citizen, timeout=0.1)
        if ticket and ticket["answered_at"]:
            break
        await asyncio.sleep(0.1)
    handed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "--home", str(stack.home.root), "agents", "transfer-110",
        "1009",
    )
    assert await handed.wait() == 0
    assert await call == 0

    ticket = await stack.ticket_of(citizen)
    assert ticket is not None
    assert ticket["agent"] == "1009"
    assert ticket["transferred_to"] == "110" and ticket["emergency"] is True
    centre = stack.phones.phones[-1]
    assert any("13900000601" in invite for invite in centre.received_invites())


async def test_an_agent_consults_110_then_hands_the_caller_over(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    stack: HotlineStack = await hotline_factory(talk_ms=8000)
    citizen = stack.citizen("12345", "13900000602", keys="11")
    call = asyncio.create_task(citizen.run())
    for _ in range(200):
        ticket = await stack.ticket_of(citizen, timeout=0.1)
        if ticket and ticket["answered_at"]:
            break
        await asyncio.sleep(0.1)
    handed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "--home", str(stack.home.root), "agents", "transfer-110",
        "1009", "--attended",
    )
    assert await handed.wait() == 0
    assert await call == 0

    ticket = await stack.ticket_of(citizen)
    assert ticket is not None
    assert ticket["transferred_to"] == "110" and ticket["emergency"] is True
    assert stack.phones.phones[-1].received_invites()  # the 110 centre was consulted
