"""Issue 3: the YAML menus drive real calls; keys are RFC 4733 events from SIPp citizens.

The calls of a test run side by side on one stack, each from its own number."""

from __future__ import annotations

import asyncio
from datetime import datetime

from hotline_stack import HotlineStack


async def test_menu_paths_on_real_calls(hotline: HotlineStack) -> None:
    nested, invalid_then_valid, english, legacy, barge_in = await asyncio.gather(
        # 3 complaint -> 2 environment -> 2 west district
        hotline.call("12345", "13900000101", keys="322"),
        # 7 is no option: the menu says so and asks again; then 4 -> 1 suggestion -> 2 west
        hotline.call("12345", "13900000102", keys="7412", key_gap_ms=2500),
        # 9 English, then 1 question, 1 east district
        hotline.call("12345", "13900000103", keys="911", key_gap_ms=2500),
        # The consumer line lands in its own menu with the category already set.
        hotline.call("12315", "13900000104", keys="1"),
        # A key during the greeting is the answer (barge-in): no need to hear it all.
        hotline.call("12345", "13900000105", keys="12", first_key_delay_ms=300),
    )

    assert nested["ivr_path"][:4] == [
        "hotline_12345", "main_menu", "complaint_menu", "complaint_environment"
    ]
    assert nested["category"] == "environment"
    assert nested["variables"]["location"] == "d-west"

    assert invalid_then_valid["ivr_path"][:4] == [
        "hotline_12345", "main_menu", "suggestion_menu", "suggestion"
    ]
    assert invalid_then_valid["category"] == "suggestion"

    assert english["language"] == "en"
    assert english["ivr_path"][:4] == ["hotline_12345", "main_menu", "main_language",
                                      "toggle_language"]
    assert "consultation" in english["ivr_path"]

    assert legacy["line"] == "12315"
    assert legacy["ivr_path"][0] == "line_12315"
    assert legacy["category"] == "consumer"

    assert barge_in["ivr_path"][:3] == ["hotline_12345", "main_menu", "consultation"]
    # The greeting and the menu prompt take far longer than this when heard out.
    started = datetime.fromisoformat(barge_in["created_at"])
    answered = datetime.fromisoformat(barge_in["answered_at"])
    assert (answered - started).total_seconds() < 15

    for ticket in (nested, invalid_then_valid, english, legacy, barge_in):
        assert ticket["outcome"] == "answered", ticket
        assert ticket["agent"], ticket


async def test_no_input_until_the_tries_run_out_still_ends_with_a_person(
    hotline: HotlineStack,
) -> None:
    # An elderly caller who presses nothing: the menu repeats, then puts them to a person.
    ticket = await hotline.call("12345", "13900000106", keys="", wait_timeout_seconds=120)

    assert ticket["ivr_path"][:2] == ["hotline_12345", "main_menu"]
    assert ticket["ivr_path"][-1] == "main_menu"  # the menu's own failure: a person
    assert ticket["outcome"] == "answered"
    assert ticket["agent"] in {"1001", "1002"}  # unclassified, unlocated: the city


async def test_caller_hanging_up_mid_menu_ends_cleanly(hotline: HotlineStack) -> None:
    citizen = hotline.citizen("12345", "13900000107", keys="3", wait_timeout_seconds=2)
    await citizen.run()
    ticket = await hotline.ticket_of(citizen)

    assert ticket is not None
    assert ticket["outcome"] == "caller_hung_up"
    assert ticket["ended_at"] is not None and ticket["agent"] is None
    assert ticket["ivr_path"][:3] == ["hotline_12345", "main_menu", "complaint_menu"]
