"""The interpreter over a fake channel, on the sample dialplans."""

from __future__ import annotations

from datetime import datetime

import pytest
from menu_helpers import (
    MAKEUP_SATURDAY_10AM,
    NATIONAL_DAY_10AM,
    REPO,
    WEDNESDAY_10AM,
    WEDNESDAY_10PM,
    FakeChannel,
)

from ivr import chanvars
from ivr.channel import CallerHungUp
from ivr.home import Home
from ivr.menu import (
    CallStart,
    Goodbye,
    MenuTree,
    RouteTo,
    TransferTo,
    VoiceMessage,
    load_menu_files,
    load_menus,
    run_menu,
)
from ivr.menu.prompts import resolve_prompt


@pytest.fixture(scope="module")
def tree() -> MenuTree:
    return load_menus(Home.resolve(REPO))


def start(
    entry: str = "hotline_12345",
    *,
    now: datetime = WEDNESDAY_10AM,
    line: str = "12345",
    preset: dict[str, str] | None = None,
) -> CallStart:
    return CallStart(
        line=line,
        caller="13800000000",
        entry=entry,
        now=now,
        preset=preset or {},
        recording_name="T-2025-000042",
    )


def spoken(tree: MenuTree, name: str, language: str = "zh") -> str:
    return resolve_prompt(tree.prompts[name], language)


async def test_nested_path_sets_category_and_district(tree: MenuTree) -> None:
    result = await run_menu(tree, FakeChannel(["3", "2", "1"]), start())
    assert result.path == [
        "hotline_12345",
        "main_menu",
        "complaint_menu",
        "complaint_environment",
        "ask_district",
        "choose_district",
        "district_east",
        "district_done",
        "to_person",
    ]
    assert result.outcome == RouteTo(category="environment", unit="d-east")
    assert result.variables == {"category": "environment", "location": "d-east"}


async def test_invalid_key_then_valid_key(tree: MenuTree) -> None:
    channel = FakeChannel(["7", "0"])
    result = await run_menu(tree, channel, start())
    assert result.outcome == TransferTo(target="110", emergency=True)
    assert channel.reads[0] == [spoken(tree, "welcome"), spoken(tree, "main_choices")]
    assert channel.reads[1] == [spoken(tree, "invalid"), spoken(tree, "main_choices")]


async def test_no_input_until_tries_run_out_ends_with_a_person(tree: MenuTree) -> None:
    channel = FakeChannel([])
    result = await run_menu(tree, channel, start())
    assert result.path == ["hotline_12345", "main_menu"]
    assert result.outcome == RouteTo(category=None, unit=None)
    assert len(channel.reads) == 3
    assert channel.reads[1][0] == spoken(tree, "no_input")


async def test_barge_in_key_during_greeting_is_the_answer(tree: MenuTree) -> None:
    # The fake answers the first read, which plays greeting and choices interruptibly.
    channel = FakeChannel(["0"])
    result = await run_menu(tree, channel, start())
    assert result.outcome == TransferTo(target="110", emergency=True)
    assert len(channel.reads) == 1


async def test_language_switch_changes_every_later_prompt(tree: MenuTree) -> None:
    channel = FakeChannel(["9", "4", "2"])
    result = await run_menu(tree, channel, start())
    assert result.language == "en"
    assert channel.variables == {chanvars.LANGUAGE: "en"}
    assert channel.reads[1] == [spoken(tree, "welcome", "en"), spoken(tree, "main_choices", "en")]
    assert channel.reads[2] == [spoken(tree, "suggestion_choices", "en")]
    assert result.outcome == RouteTo(category="praise", unit=None)


async def test_language_switch_twice_returns_to_mandarin(tree: MenuTree) -> None:
    channel = FakeChannel(["9", "9", "0"])
    result = await run_menu(tree, channel, start())
    assert result.language == "zh"
    assert channel.reads[2][1] == spoken(tree, "main_choices", "zh")


async def test_legacy_entry_with_preset_category(tree: MenuTree) -> None:
    call = start("line_12320", line="12320", preset={"category": "health", "priority": "1"})
    result = await run_menu(tree, FakeChannel(["1"]), call)
    assert result.path == ["line_12320", "menu_12320", "to_person"]
    assert result.outcome == RouteTo(category="health", unit=None)
    assert result.variables["priority"] == "1"


async def test_legacy_line_silent_caller_reaches_its_department(tree: MenuTree) -> None:
    result = await run_menu(tree, FakeChannel([]), start("line_12315", line="12315"))
    assert result.outcome == RouteTo(category="consumer", unit=None)


async def test_hang_up_mid_menu_keeps_partial_path(tree: MenuTree) -> None:
    result = await run_menu(tree, FakeChannel(["3", CallerHungUp()]), start())
    assert result.outcome == Goodbye("caller_hung_up")
    assert result.path == ["hotline_12345", "main_menu", "complaint_menu"]


@pytest.mark.parametrize(
    ("now", "first_menu"),
    [
        (WEDNESDAY_10AM, "main_menu"),
        (WEDNESDAY_10PM, "night_menu"),
        (NATIONAL_DAY_10AM, "night_menu"),
        (MAKEUP_SATURDAY_10AM, "main_menu"),
    ],
)
async def test_condition_on_time_weekday_and_holidays(
    tree: MenuTree, now: datetime, first_menu: str
) -> None:
    result = await run_menu(tree, FakeChannel([]), start(now=now))
    assert result.path[1] == first_menu


async def test_after_hours_voice_message_goes_under_dated_folder(tree: MenuTree) -> None:
    channel = FakeChannel(["1"])
    result = await run_menu(tree, channel, start(now=WEDNESDAY_10PM))
    assert result.outcome == VoiceMessage(
        recording="recordings/2025/03/05/T-2025-000042", seconds=9.5
    )
    assert channel.plays[-1] == [spoken(tree, "message_taken")]


async def test_empty_voice_message_goes_to_the_queue(tree: MenuTree) -> None:
    channel = FakeChannel(["1"], record_seconds=0.0)
    result = await run_menu(tree, channel, start(now=WEDNESDAY_10PM))
    assert result.path[-1] == "night_queue"
    assert isinstance(result.outcome, RouteTo)


async def test_on_node_sees_every_node_as_entered(tree: MenuTree) -> None:
    seen: list[str] = []

    async def record(node_id: str) -> None:
        seen.append(node_id)

    result = await run_menu(tree, FakeChannel(["1", "2"]), start(), on_node=record)
    assert seen == result.path
    plain: list[str] = []
    await run_menu(tree, FakeChannel(["0"]), start(), on_node=plain.append)
    assert plain == ["hotline_12345", "main_menu", "emergency_110"]


async def test_step_budget_routes_to_a_person(tmp_path) -> None:  # type: ignore[no-untyped-def]
    looping = tmp_path / "loop.yaml"
    looping.write_text(
        "entries: [main]\n"
        "nodes:\n"
        "  main:\n"
        "    verb: menu\n"
        "    prompt: {zh: 按1, en: Press 1}\n"
        "    options: {'1': main}\n",
        encoding="utf-8",
    )
    tree = load_menu_files([looping])
    result = await run_menu(tree, FakeChannel(["1"] * 1000), start("main"), max_steps=50)
    assert result.outcome == RouteTo(category=None, unit=None)
    assert len(result.path) == 50


async def test_collect_validates_and_stores_digits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "collect.yaml"
    plan.write_text(
        "entries: [ask]\n"
        "nodes:\n"
        "  ask:\n"
        "    verb: collect\n"
        "    prompt: {zh: 请输入手机号, en: Your mobile number}\n"
        "    variable: callback\n"
        "    min_digits: 11\n"
        "    max_digits: 11\n"
        "    pattern: '1[3-9][0-9]{9}'\n"
        "    invalid: {zh: 号码无效, en: Not valid}\n"
        "    next: done\n"
        "  done: {verb: hangup, prompt: {zh: 再见, en: Bye}}\n",
        encoding="utf-8",
    )
    tree = load_menu_files([plan])
    result = await run_menu(tree, FakeChannel(["12345", "13912345678#"]), start("ask"))
    assert result.variables == {"callback": "13912345678"}
    assert result.outcome == Goodbye("goodbye")
    failed = await run_menu(tree, FakeChannel(["1", "2", "3"]), start("ask"))
    assert failed.outcome == RouteTo(category=None, unit=None)


def test_call_start_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CallStart(line="12345", caller="1", entry="x", now=datetime(2025, 1, 1))
