"""Issue 4: calls land by zone at the lowest unit that can take them, overflow up the
levels when nobody answers, and end with a voice message when nobody is there at all."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from hotline_stack import HotlineStack

ALL_AGENTS = frozenset(f"{n}" for n in range(1001, 1017))


def quick_overflow(home: Path) -> None:
    """Communities give up after 8 s instead of 30 (the sample's), to keep tests short."""
    units = home / "routing" / "units.yaml"
    units.write_text(re.sub(r"queue_timeout: 30\b", "queue_timeout: 8", units.read_text()))


async def test_calls_land_at_the_callers_community_and_by_language(hotline: HotlineStack) -> None:
    community, landing_zone, english = await asyncio.gather(
        # A known caller of community c-east-1-1 (routing/callers.yaml) asks a question.
        hotline.call("12345", "13800000001", keys="11"),
        # The carrier delivers the call on the west district's DID; nobody pressed a district.
        hotline.call("02160000200", "13900000201", keys="1-"),
        # English, a question, west district: the west district has no English speaker,
        # so the city's English-speaking agent takes it.
        hotline.call("12345", "13900000202", keys="912", key_gap_ms=2500),
    )

    assert community["agent"] == "1013" and community["unit"] == "c-east-1-1"
    assert community["location"] == "c-east-1-1"
    assert community["location_method"] == "registry"
    assert community["level"] == "community"

    assert landing_zone["line"] == "12345"
    assert landing_zone["location_method"] == "zone" and landing_zone["location"] == "d-west"
    assert landing_zone["agent"] == "1010"

    assert english["language"] == "en"
    assert english["agent"] == "1001"
    assert english["unit"] == "city"
    for ticket in (community, landing_zone, english):
        assert ticket["outcome"] == "answered", ticket


async def test_unanswered_community_overflows_to_its_street(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    stack: HotlineStack = await hotline_factory(tweak=quick_overflow, silent=frozenset({"1013"}))

    ticket = await stack.call("12345", "13800000001", keys="11", wait_timeout_seconds=90)

    assert [hop["unit"] for hop in ticket["route_hops"]] == ["c-east-1-1", "s-east-1"]
    assert [hop["outcome"] for hop in ticket["route_hops"]] == ["timeout", "answered"]
    assert ticket["agent"] == "1011" and ticket["level"] == "street"
    assert ticket["outcome"] == "answered"


async def test_nobody_there_takes_a_voice_message_and_marks_a_callback(hotline_factory) -> None:  # type: ignore[no-untyped-def]
    stack: HotlineStack = await hotline_factory(absent=ALL_AGENTS)

    # A question from the east district; nobody is logged in anywhere: speak a message.
    ticket = await stack.call("12345", "13900000203", keys="11---~~", wait_timeout_seconds=90)

    assert ticket["callback_requested"] is True
    assert ticket["outcome"] == "voice_message"
    assert ticket["ivr_path"][-1] == "nobody_available"
    message = stack.home.root / ticket["recording"]
    assert message.name.endswith("-message.wav") and message.stat().st_size > 8000
