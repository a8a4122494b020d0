"""The deployment as one snapshot: loading, cross checks, hot reload, dry runs, schemas."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from deployment_helpers import REPO, copy_sample_home, edit, fake_built_prompts

import ivr.deployment as deployment_module
from ivr.deployment import (
    SCHEMA_DIR_NAME,
    Deployment,
    DeploymentHolder,
    RosterAvailability,
    UnknownLine,
    config_json_schemas,
    cross_check_menus,
    dry_run,
    load_deployment,
    route_request,
    schema_text,
    write_schemas,
)
from ivr.home import ENGINE_ROOT, Home
from ivr.menu import RouteTo, TransferTo, load_menus
from ivr.routing import Location, NobodyAvailable, RoutePlan
from ivr.yamlsource import ConfigError, Problem

WEDNESDAY_10AM = datetime.fromisoformat("2025-03-05T10:00:00+08:00")


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return copy_sample_home(tmp_path / "home")


@pytest.fixture(scope="module")
def sample() -> Deployment:
    return load_deployment(Home(REPO), check_prompt_files=False)


def _problems(home: Home, **options: bool) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_deployment(home, **options)
    return caught.value.problems


# -- loading -----------------------------------------------------------------------------


def test_repository_sample_home_is_valid(sample: Deployment) -> None:
    counts = sample.counts()
    assert counts["lines"] == 5 and counts["units"] > 10 and counts["agents"] > 10
    assert counts["menu_nodes"] > 20 and counts["prompts"] > 10
    for line in sample.routing.lines.values():
        assert line.entry in sample.menus.entries
    assert sample.deadlines.tier_for("help") == "help"
    assert sample.loaded_at.tzinfo is not None


def test_problems_of_every_file_at_once(home: Home) -> None:
    agent_line = edit(home, "routing/agents.yaml", "unit: so-elderly}", "unit: nowhere}")
    node_line = edit(
        home,
        "dialplans/common.yaml",
        "variables: {location: d-east}",
        "variables: {location: d-east}\n    colour: red",
    )
    deadline_line = edit(home, "config/deadlines.yaml", "default_tier: help", "default_tier: x")
    problems = _problems(home, check_prompt_files=False)
    assert problems == sorted(problems)
    assert Problem("routing/agents.yaml", agent_line, "unknown unit 'nowhere'") in problems
    assert (
        Problem("dialplans/common.yaml", node_line + 1, "nodes.district_east.colour: unknown field")
        in problems
    )
    assert any(
        (p.file, p.line) == ("config/deadlines.yaml", deadline_line) and "unknown tier" in p.message
        for p in problems
    )
    assert all(str(p).startswith(f"{p.file}:{p.line}: ") for p in problems)


def test_settings_file_problems_are_reported(home: Home) -> None:
    (home.config_dir / "hotline.yaml").write_text("pbx:\n  sip_port: 0\n", encoding="utf-8")
    problems = _problems(home, check_prompt_files=False)
    assert [(p.file, p.line) for p in problems] == [("config/hotline.yaml", 2)]


def test_settings_name_menu_entries_that_exist(home: Home) -> None:
    (home.config_dir / "hotline.yaml").write_text(
        "followup: {entry: survey_typo}\ncalls: {nobody_available_entry: gone}\n",
        encoding="utf-8",
    )
    assert [p.message for p in _problems(home, check_prompt_files=False)] == [
        "calls.nobody_available_entry: node 'gone' is not listed under 'entries:' in dialplans/",
        "followup.entry: node 'survey_typo' is not listed under 'entries:' in dialplans/",
    ]


def test_line_problems_point_at_the_routing_file(home: Home) -> None:
    line = edit(home, "routing/lines.yaml", "entry: hotline_12345", "entry: nowhere")
    assert _problems(home, check_prompt_files=False) == [
        Problem("routing/lines.yaml", line, "line 12345: unknown entry node 'nowhere'")
    ]


def test_emergency_key_is_required_where_the_line_says(home: Home) -> None:
    line = edit(
        home,
        "dialplans/legacy.yaml",
        'options: {"0": emergency_110, "1": to_person, "2": main_menu, "9": language_12320}',
        'options: {"1": to_person, "2": main_menu, "9": language_12320}',
    )
    [problem] = _problems(home, check_prompt_files=False)
    assert (problem.file, problem.line) == ("dialplans/legacy.yaml", line)
    assert "first menu 'menu_12320' of line 12320 must offer key 0" in problem.message


def test_menu_location_must_be_a_territory(home: Home) -> None:
    line = edit(home, "dialplans/common.yaml", "{location: d-east}", "{location: amr}")
    [problem] = _problems(home, check_prompt_files=False)
    assert (problem.file, problem.line) == ("dialplans/common.yaml", line)
    assert problem.message.startswith("nodes.district_east.variables.location: location 'amr'")
    assert "territorial" in problem.message


def test_menu_names_unknown_to_routing(home: Home) -> None:
    line = edit(home, "dialplans/12345.yaml", "{category: urban}", "{category: parking}")
    [problem] = _problems(home, check_prompt_files=False)
    assert (problem.file, problem.line) == ("dialplans/12345.yaml", line)
    assert "unknown category 'parking'" in problem.message


def test_prompt_files_are_required_unless_told(home: Home) -> None:
    problems = _problems(home)
    assert problems and all("not synthesized yet" in p.message for p in problems)
    assert fake_built_prompts(load_menus(home), home) > 0
    assert load_deployment(home).counts()["prompts"] > 0


def test_cross_check_is_pure(sample: Deployment) -> None:
    assert cross_check_menus(sample.menus, sample.routing) == []


def test_unknown_line_lists_the_lines(sample: Deployment) -> None:
    with pytest.raises(UnknownLine) as caught:
        sample.line("999")
    assert "12345" in str(caught.value) and "88880000" in str(caught.value)


# -- hot reload --------------------------------------------------------------------------


def test_reload_keeps_the_old_snapshot_on_a_bad_edit(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = DeploymentHolder(home, check_prompt_files=False)
    first = holder.current
    edit(home, "routing/agents.yaml", "unit: so-elderly}", "unit: nowhere}")
    with structlog.testing.capture_logs() as logs:
        # A fresh logger: one cached under another test's configuration would bypass capture.
        monkeypatch.setattr(deployment_module, "log", structlog.get_logger("test"))
        problems = holder.reload()
    assert problems and all(p.file == "routing/agents.yaml" for p in problems)
    assert holder.current is first
    rejected = [entry for entry in logs if entry["event"] == "deployment change rejected"]
    assert [entry["problem"] for entry in rejected] == [str(p) for p in problems]

    edit(home, "routing/agents.yaml", "unit: nowhere}", "unit: so-elderly}")
    edit(home, "dialplans/common.yaml", "没有收到您的按键", "没有听到您的按键")
    assert holder.reload() == []
    assert holder.current is not first
    assert "没有听到您的按键" in (holder.current.menus.prompts["no_input"].text("zh") or "")
    assert first.menus.prompts["no_input"].text("zh") == "没有收到您的按键，请再听一遍。"


def test_holder_refuses_to_start_on_a_broken_home(home: Home) -> None:
    edit(home, "routing/agents.yaml", "unit: so-elderly}", "unit: nowhere}")
    with pytest.raises(ConfigError):
        DeploymentHolder(home, check_prompt_files=False)


async def test_watch_applies_a_valid_edit_and_rejects_a_bad_one(home: Home) -> None:
    holder = DeploymentHolder(home, check_prompt_files=False)
    first = holder.current
    applied: asyncio.Queue[Deployment] = asyncio.Queue()
    rejected: asyncio.Queue[list[Problem]] = asyncio.Queue()

    async def on_reload(deployment: Deployment) -> None:
        await applied.put(deployment)

    stop = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(on_reload, rejected.put_nowait, stop_event=stop))
    await asyncio.sleep(0.3)  # let the watcher start before the first edit
    try:
        started = time.monotonic()
        edit(home, "dialplans/common.yaml", "没有收到您的按键", "没有听到您的按键")
        fresh = await asyncio.wait_for(applied.get(), timeout=2)
        assert time.monotonic() - started < 1.0
        assert fresh is holder.current and fresh is not first

        edit(home, "routing/lines.yaml", "entry: hotline_12345", "entry: nowhere")
        problems = await asyncio.wait_for(rejected.get(), timeout=2)
        assert problems and problems[0].file == "routing/lines.yaml"
        assert holder.current is fresh
        assert applied.empty()
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=5)


async def test_watch_ignores_other_files_and_survives_a_failing_listener(home: Home) -> None:
    holder = DeploymentHolder(home, check_prompt_files=False)
    calls: list[Deployment] = []

    def failing(deployment: Deployment) -> None:
        calls.append(deployment)
        raise RuntimeError("listener bug")

    stop = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(failing, stop_event=stop))
    await asyncio.sleep(0.3)
    try:
        (home.routing_dir / "README.md").write_text("notes\n", encoding="utf-8")
        await asyncio.sleep(0.5)
        assert calls == []
        edit(home, "dialplans/common.yaml", "没有收到您的按键", "没有听到您的按键")
        for _ in range(40):
            if len(calls) >= 1:
                break
            await asyncio.sleep(0.05)
        edit(home, "dialplans/common.yaml", "没有听到您的按键", "没有收到您的按键")
        for _ in range(40):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(calls) == 2
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=5)


# -- dry runs ----------------------------------------------------------------------------


async def test_dry_run_emergency(sample: Deployment) -> None:
    run = await dry_run(sample, line="12345", caller="13900000000", keys="0", at=WEDNESDAY_10AM)
    assert run.menu.outcome == TransferTo("110", emergency=True)
    assert run.menu.path[-1] == "emergency_110"
    assert run.location is None and run.route is None


async def test_dry_run_complaint_is_routed(sample: Deployment) -> None:
    run = await dry_run(sample, line="12345", caller="13900000000", keys="3 1 1", at=WEDNESDAY_10AM)
    assert run.menu.outcome == RouteTo(category="consumer", unit="d-east")
    assert run.location == Location("d-east", "ivr")
    assert isinstance(run.route, RoutePlan)
    assert run.route.hops[-1].unit == sample.routing.city
    assert any(event.startswith("key 3") for event in run.events)


async def test_dry_run_legacy_line_starts_at_its_department(sample: Deployment) -> None:
    run = await dry_run(sample, line="12315", caller="13900000000", keys="1", at=WEDNESDAY_10AM)
    assert isinstance(run.route, RoutePlan)
    assert run.route.rule == "preset"
    assert run.route.hops[0].unit == "amr"


async def test_dry_run_zone_wins_over_the_menu_choice(sample: Deployment) -> None:
    run = await dry_run(
        sample,
        line="12345",
        caller="13900000000",
        keys="3 1 1",
        at=WEDNESDAY_10AM,
        did="02160000200",
    )
    assert run.location == Location("d-west", "zone")


async def test_dry_run_nobody_available(sample: Deployment) -> None:
    run = await dry_run(
        sample,
        line="12345",
        caller="13900000000",
        keys="3 1 1",
        at=WEDNESDAY_10AM,
        absent=sample.routing.agents,
    )
    assert isinstance(run.route, NobodyAvailable)
    assert run.route.tried


def test_roster_availability(sample: Deployment) -> None:
    roster = RosterAvailability.of(sample.routing)
    assert roster.available("q-city-zh") == 2
    assert roster.available("q-city-en") == 1
    assert roster.available("q-nowhere-zh") == 0
    assert RosterAvailability.of(sample.routing, absent=["1001"]).available("q-city-zh") == 1


def test_route_request_keeps_departments_and_places_apart(sample: Deployment) -> None:
    legacy = sample.line("12315")
    place = Location("d-east", "ivr")
    department = route_request(
        sample.routing,
        line=legacy,
        outcome=RouteTo("consumer", "water"),
        location=place,
        language="zh",
        now=WEDNESDAY_10AM,
    )
    assert department.preset_unit == "water"
    territory = route_request(
        sample.routing,
        line=legacy,
        outcome=RouteTo("consumer", "d-east"),
        location=place,
        language="zh",
        now=WEDNESDAY_10AM,
    )
    assert (territory.preset_unit, territory.location, territory.line) == ("amr", "d-east", "12315")


# -- schemas -----------------------------------------------------------------------------


def test_committed_schemas_are_fresh() -> None:
    for name, schema in config_json_schemas().items():
        committed = ENGINE_ROOT / SCHEMA_DIR_NAME / name
        assert committed.read_text(encoding="utf-8") == schema_text(schema), (
            f"{committed} is stale: run 'ivr schema --write'"
        )


def test_sample_dialplans_point_at_the_committed_schema() -> None:
    for path in sorted((REPO / "dialplans").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/dialplan.schema.json"
        assert (path.parent / "../schema/dialplan.schema.json").resolve().is_file()


def test_schemas_describe_files_as_written() -> None:
    schemas = config_json_schemas()
    assert {schema["$id"] for schema in schemas.values()} == set(schemas)
    routing = json.dumps(schemas["routing.schema.json"])
    assert '"24h"' in routing and "Interval" not in routing
    deadlines = json.dumps(schemas["deadlines.schema.json"])
    assert '"format": "duration"' not in deadlines and "7d" in deadlines


def test_write_schemas_leaves_unchanged_files_alone(tmp_path: Path) -> None:
    first = write_schemas(tmp_path)
    assert all(first.values()) and len(first) == 4
    assert not any(write_schemas(tmp_path).values())
    assert list(write_schemas(tmp_path, ["dialplan.schema.json"])) == [
        tmp_path / "dialplan.schema.json"
    ]


def test_loaded_at_is_utc(sample: Deployment) -> None:
    assert sample.loaded_at.utcoffset() == UTC.utcoffset(None)
