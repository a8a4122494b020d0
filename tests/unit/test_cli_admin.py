"""``ivr validate``, ``ivr schema``, ``ivr simulate`` and ``ivr prompts`` as an admin and a
script use them, on copies of the repository's sample home."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from deployment_helpers import copy_sample_home, edit, fake_built_prompts
from typer.testing import CliRunner, Result

import ivr.cli
import ivr.cli.admin as admin
from ivr.deployment import SCHEMA_DIR_NAME
from ivr.home import ENGINE_ROOT, Home
from ivr.menu import PromptBuildReport, load_menus
from ivr.yamlsource import Problem

ivr.cli._register_commands()
runner = CliRunner()
PROBLEM_LINE = re.compile(r"^[\w./-]+\.yaml:\d+: .+$")
WEDNESDAY_10AM = "2025-03-05T10:00"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return copy_sample_home(tmp_path / "home")


def ivr_cmd(home: Home, *args: str) -> Result:
    return runner.invoke(ivr.cli.app, ["--home", str(home.root), *args])


def simulate_json(home: Home, *args: str) -> dict[str, Any]:
    result = ivr_cmd(home, "simulate", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- validate ----------------------------------------------------------------------------


def test_validate_ok(home: Home) -> None:
    result = ivr_cmd(home, "validate", "--no-prompt-files")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"ok: \d+ units, \d+ agents, 5 lines, \d+ menu nodes, \d+ prompts\n", result.stdout
    )


def test_validate_requires_prompt_files_by_default(home: Home) -> None:
    assert ivr_cmd(home, "validate").exit_code == 1
    fake_built_prompts(load_menus(home), home)
    assert ivr_cmd(home, "validate").exit_code == 0


def test_validate_lists_every_problem_as_file_line(home: Home) -> None:
    agent_line = edit(home, "routing/agents.yaml", "unit: so-elderly}", "unit: nowhere}")
    node_line = edit(home, "dialplans/12345.yaml", "tries: 3", "tries: many")
    result = ivr_cmd(home, "validate", "--no-prompt-files")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and all(PROBLEM_LINE.match(line) for line in lines)
    assert f"routing/agents.yaml:{agent_line}: unknown unit 'nowhere'" in lines
    assert any(line.startswith(f"dialplans/12345.yaml:{node_line}: ") for line in lines)
    assert "2 problem(s)" in result.stderr
    assert "Traceback" not in result.output


def test_validate_json(home: Home) -> None:
    line = edit(home, "routing/lines.yaml", "entry: hotline_12345", "entry: nowhere")
    result = ivr_cmd(home, "validate", "--no-prompt-files", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "problems": [
            {
                "file": "routing/lines.yaml",
                "line": line,
                "message": "line 12345: unknown entry node 'nowhere'",
            }
        ],
    }


# -- schema ------------------------------------------------------------------------------


def test_schema_prints_the_committed_dialplan_schema(home: Home) -> None:
    result = ivr_cmd(home, "schema")
    assert result.exit_code == 0
    committed = ENGINE_ROOT / SCHEMA_DIR_NAME / "dialplan.schema.json"
    assert result.stdout == committed.read_text(encoding="utf-8")
    assert json.loads(ivr_cmd(home, "schema", "routing").stdout)["$id"] == "routing.schema.json"


def test_schema_write_is_fresh(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "schema"
    monkeypatch.setattr(admin, "SCHEMA_DIR", target)
    result = ivr_cmd(home, "schema", "--write")
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in target.iterdir())
    assert written == [
        "deadlines.schema.json",
        "dialplan.schema.json",
        "hotline.schema.json",
        "routing.schema.json",
    ]
    for name in written:
        committed = ENGINE_ROOT / SCHEMA_DIR_NAME / name
        assert (target / name).read_text(encoding="utf-8") == committed.read_text(
            encoding="utf-8"
        ), f"{committed} is stale: run 'ivr schema --write'"
    again = ivr_cmd(home, "schema", "--write")
    assert again.stdout.count("unchanged") == 4


def test_schema_unknown_name(home: Home) -> None:
    result = ivr_cmd(home, "schema", "nope")
    assert result.exit_code == 1
    assert "dialplan, routing, hotline, deadlines" in result.stderr


# -- simulate ----------------------------------------------------------------------------


def test_simulate_emergency_key(home: Home) -> None:
    data = simulate_json(home, "12345", "--caller", "13900000000", "--keys", "0")
    assert data["outcome"] == {"kind": "transfer", "target": "110", "emergency": True}
    assert data["path"][0] == "hotline_12345" and data["path"][-1] == "emergency_110"
    assert data["location"] is None and data["route"] is None
    assert data["prompts"]


def test_simulate_complaint_gets_a_route_plan(home: Home) -> None:
    data = simulate_json(
        home, "12345", "--caller", "13900000000", "--keys", "3 1 1", "--at", WEDNESDAY_10AM
    )
    assert data["at"] == "2025-03-05T10:00:00+08:00"  # naive: the routing time zone
    assert data["outcome"] == {
        "kind": "route",
        "category": "consumer",
        "unit": "d-east",
        "priority": 0,
    }
    assert data["variables"] == {"category": "consumer", "location": "d-east"}
    assert data["location"] == {"unit": "d-east", "method": "ivr"}
    route = data["route"]
    assert route["kind"] == "plan" and route["rule"]
    assert route["hops"][-1]["unit"] == "city"
    assert {"unit", "level", "queue", "timeout_seconds"} == set(route["hops"][0])


def test_simulate_with_everyone_absent(home: Home) -> None:
    absent = [arg for n in range(1001, 1017) for arg in ("--absent", str(n))]
    data = simulate_json(
        home, "12345", "--caller", "139", "--keys", "3 1 1", "--at", WEDNESDAY_10AM, *absent
    )
    assert data["route"]["kind"] == "nobody_available"
    assert data["route"]["tried"]


def test_simulate_did_and_aware_time(home: Home) -> None:
    data = simulate_json(
        home,
        "12345",
        "--caller",
        "139",
        "--keys",
        "3 1",
        "--did",
        "02160000200",
        "--at",
        "2025-03-05T02:00:00+00:00",
    )
    assert data["location"] == {"unit": "d-west", "method": "zone"}
    assert data["at"] == "2025-03-05T10:00:00+08:00"  # the menus see the city's clock


def test_simulate_for_people(home: Home) -> None:
    result = ivr_cmd(
        home, "simulate", "12345", "--caller", "139", "--keys", "3 1 1", "--at", WEDNESDAY_10AM
    )
    assert result.exit_code == 0, result.output
    for expected in (
        "main_menu",
        "key 3",
        "category=consumer",
        "location: d-east (by ivr)",
        "q-city-zh",
    ):
        assert expected in result.stdout


def test_simulate_unknown_line_lists_the_lines(home: Home) -> None:
    result = ivr_cmd(home, "simulate", "999", "--caller", "139")
    assert result.exit_code == 1
    assert "unknown line '999'" in result.stderr and "12345, 12315" in result.stderr


@pytest.mark.parametrize(("option", "value"), [("--keys", "12a"), ("--at", "yesterday")])
def test_simulate_bad_options(home: Home, option: str, value: str) -> None:
    result = ivr_cmd(home, "simulate", "12345", "--caller", "139", option, value)
    assert result.exit_code == 2
    assert option in result.output


def test_simulate_help_documents_the_key_notation(home: Home) -> None:
    result = ivr_cmd(home, "simulate", "--help")
    assert "0-9 * #" in result.stdout and "hangs up" in result.stdout


def test_simulate_on_a_broken_home(home: Home) -> None:
    line = edit(home, "routing/agents.yaml", "unit: so-elderly}", "unit: nowhere}")
    result = ivr_cmd(home, "simulate", "12345", "--caller", "139")
    assert result.exit_code == 1
    assert f"routing/agents.yaml:{line}: unknown unit 'nowhere'" in result.stdout


# -- prompts -----------------------------------------------------------------------------


def test_prompts_check(home: Home) -> None:
    result = ivr_cmd(home, "prompts", "check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and all(PROBLEM_LINE.match(line) for line in lines)
    fake_built_prompts(load_menus(home), home)
    result = ivr_cmd(home, "prompts", "check")
    assert result.exit_code == 0 and "every prompt can play" in result.stdout


def test_prompts_build_counts(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_build(tree: object, built_home: Home) -> PromptBuildReport:
        assert built_home == home
        return PromptBuildReport(
            built=[Path("a.wav")],
            unchanged=[Path("b.wav"), Path("c.wav")],
            failed=[Problem("dialplans/common.yaml", 9, "cannot synthesize zh: espeak-ng")],
        )

    monkeypatch.setattr(admin, "build_prompts", fake_build)
    result = ivr_cmd(home, "prompts", "build")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "dialplans/common.yaml:9: cannot synthesize zh: espeak-ng",
        "1 built, 2 unchanged, 1 failed",
    ]
