"""The key-script simulator, and a fuzz: no key sequence can make a run raise or end
anywhere but in one of the four outcomes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from menu_helpers import CITY, CORPUS, REPO, SAMPLE_LINES, WEDNESDAY_10AM, WEDNESDAY_10PM

from ivr.home import Home
from ivr.menu import (
    Goodbye,
    MenuTree,
    RouteTo,
    ScriptedChannel,
    TransferTo,
    VoiceMessage,
    load_menu_files,
    load_menus,
    simulate,
)
from ivr.menu.simulator import SCRIPT_ALPHABET

TREE = load_menus(Home.resolve(REPO))


async def test_keys_walk_the_tree_and_events_tell_the_story() -> None:
    events: list[str] = []
    result = await simulate(
        TREE,
        line="12345",
        caller="13800000000",
        keys="3-1 2",
        at=WEDNESDAY_10AM,
        entry="hotline_12345",
        events=events,
    )
    assert result.outcome == RouteTo(category="consumer", unit="d-west")
    assert "timeout 5s" in events
    assert any("消费纠纷" in event for event in events)  # prompts are labelled with text


async def test_script_running_out_means_silence_then_a_person() -> None:
    result = await simulate(
        TREE, line="12345", caller="1", keys="", at=WEDNESDAY_10AM, entry="hotline_12345"
    )
    assert result.outcome == RouteTo(category=None, unit=None)


async def test_bang_hangs_up() -> None:
    result = await simulate(
        TREE, line="12345", caller="1", keys="1!", at=WEDNESDAY_10AM, entry="hotline_12345"
    )
    assert result.outcome == Goodbye("caller_hung_up")
    assert result.path[-1] == "choose_district"


async def test_after_hours_message() -> None:
    result = await simulate(
        TREE, line="12345", caller="1", keys="1", at=WEDNESDAY_10PM, entry="hotline_12345"
    )
    assert isinstance(result.outcome, VoiceMessage)
    assert result.outcome.recording.startswith("recordings/2025/03/05/")


async def test_barge_in_on_interruptible_play() -> None:
    channel = ScriptedChannel("5-")
    assert await channel.play(["a"], interrupt_keys="0123456789") == "5"
    assert await channel.play(["b"], interrupt_keys="0123456789") is None
    assert await channel.play(["c"]) is None


async def test_collect_reads_until_terminator_or_silence() -> None:
    channel = ScriptedChannel("123#45-6")
    assert await channel.read_digits([], max_digits=9, timeout_s=5) == "123"
    assert await channel.read_digits([], max_digits=9, timeout_s=5) == "45"
    assert await channel.read_digits([], max_digits=9, timeout_s=5) == "6"
    assert await channel.read_digits([], max_digits=9, timeout_s=5) == ""


def test_unknown_script_characters_are_named() -> None:
    with pytest.raises(ValueError, match="'x'"):
        ScriptedChannel("1x")


def _run_everywhere(tree: MenuTree, entries: list[str]) -> None:
    @settings(max_examples=150, deadline=None)
    @given(
        keys=st.text(alphabet=SCRIPT_ALPHABET, max_size=40),
        entry=st.sampled_from(entries),
        minutes=st.integers(min_value=0, max_value=60 * 24 * 400),
        language=st.sampled_from(["zh", "en"]),
    )
    def run(keys: str, entry: str, minutes: int, language: str) -> None:
        at = datetime(2025, 1, 1, tzinfo=CITY) + timedelta(minutes=minutes)
        result = asyncio.run(
            simulate(
                tree,
                line="12345",
                caller="13800000000",
                keys=keys,
                at=at,
                entry=entry,
                language=language,
            )
        )
        assert isinstance(result.outcome, RouteTo | TransferTo | VoiceMessage | Goodbye)
        assert result.path and result.path[0] == entry
        if isinstance(result.outcome, TransferTo) and result.outcome.target == "110":
            assert result.outcome.emergency

    run()


def test_fuzz_sample_dialplans() -> None:
    _run_everywhere(TREE, sorted(SAMPLE_LINES.values()))


def test_fuzz_corpus_all_verbs() -> None:
    tree = load_menu_files([CORPUS / "good" / "all_verbs.yaml"])
    _run_everywhere(tree, list(tree.entries))
