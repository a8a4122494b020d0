"""Issue 2: a real citizen call through a real Asterisk, end to end."""

from __future__ import annotations

import asyncio

from hotline_stack import HotlineStack


async def test_citizen_reaches_an_agent_and_gets_exactly_one_ticket(hotline: HotlineStack) -> None:
    # 1 = consultation, then 1 = east district: the east district's agent answers.
    ticket = await hotline.call("12345", "13900000011", keys="11")

    assert ticket["_sipp_exit"] == 0
    assert ticket["_answered_by"] == "1009"
    assert ticket["line"] == "12345"
    assert ticket["caller"] == "13900000011"
    assert ticket["agent"] == "1009"
    assert ticket["unit"] == "d-east"
    assert ticket["category"] == "consultation"
    assert ticket["ivr_path"][:3] == ["hotline_12345", "main_menu", "consultation"]
    assert ticket["outcome"] == "answered"
    assert ticket["created_at"] < ticket["answered_at"] < ticket["ended_at"]
    assert ticket["talk_seconds"] is not None and ticket["talk_seconds"] >= 1
    assert ticket["recording"].startswith("recordings/")
    assert len(await hotline.tickets()) == 1
    recording = hotline.home.root / ticket["recording"]
    assert recording.exists() and recording.stat().st_size > 1000


async def test_controller_down_caller_still_reaches_the_city(hotline: HotlineStack) -> None:
    hotline.stop_controller()

    citizen = hotline.citizen("12345", "13900000012", keys="")
    assert await citizen.run() == 0

    assert citizen.answered_by() in {"1001", "1002"}  # the city's own agents
    for _ in range(50):  # Asterisk writes the call record just after the call ends
        fallback = [row for row in hotline.cdr_rows() if row[-1] == "fallback"]
        if fallback:
            break
        await asyncio.sleep(0.1)
    assert len(fallback) == 1 and fallback[0][1] == "13900000012"


async def test_partial_fastagi_header_does_not_disturb_a_live_call(hotline: HotlineStack) -> None:
    citizen = hotline.citizen("12345", "13900000013", keys="11")
    live = asyncio.create_task(citizen.run())
    await asyncio.sleep(1.0)
    for _ in range(5):  # a peer that sends half a header and hangs up
        _, writer = await asyncio.open_connection(
            "127.0.0.1", hotline.settings.controller.agi_port
        )
        writer.write(b"agi_network: yes\nagi_request: agi://127.0.0.1/ivr\nagi_chan")
        await writer.drain()
        writer.close()
    assert await live == 0
    ticket = await hotline.ticket_of(citizen)
    assert ticket is not None and ticket["agent"] == "1009" and ticket["outcome"] == "answered"
