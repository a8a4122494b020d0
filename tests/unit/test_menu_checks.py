"""Sample dialplans, cross-checks with routing, JSON Schema, prompt building, generator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from menu_helpers import CATEGORIES, REPO, SAMPLE_LINES, UNITS

from ivr.home import Home
from ivr.menu import (
    MenuTree,
    build_prompts,
    check_menus,
    check_prompts,
    generate_dialplan,
    load_menu_files,
    load_menus,
    menu_json_schema,
)
from ivr.menu.verbs import VERBS
from ivr.yamlsource import ConfigError

TREE = load_menus(Home.resolve(REPO))


def test_sample_dialplans_are_clean_against_routing() -> None:
    problems = check_menus(
        TREE,
        entries=SAMPLE_LINES,
        emergency_required=set(SAMPLE_LINES),
        known_categories=CATEGORIES,
        known_units=UNITS,
    )
    assert problems == []


def test_sample_files_point_at_the_schema() -> None:
    for path in (REPO / "dialplans").glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/dialplan.schema.json"


def test_tree_knows_where_each_node_was_written() -> None:
    assert TREE.location("main_menu") == ("dialplans/12345.yaml", 57)
    with pytest.raises(TypeError):
        TREE.nodes["x"] = TREE.nodes["main_menu"]  # type: ignore[index]


def test_unknown_entry_and_undeclared_entry_are_reported_at_the_line() -> None:
    problems = check_menus(
        TREE,
        entries={"12345": "nowhere", "12315": "main_menu"},
        line_locations={"12345": ("routing/lines.yaml", 4)},
    )
    assert [str(p) for p in problems] == [
        "line 12315:1: line 12315: node 'main_menu' is not listed under 'entries:'",
        "routing/lines.yaml:4: line 12345: unknown entry node 'nowhere'",
    ]


def test_line_that_reaches_no_menu_cannot_offer_emergency(tmp_path: Path) -> None:
    plan = tmp_path / "direct.yaml"
    plan.write_text("entries: [direct]\nnodes:\n  direct: {verb: route, category: help}\n")
    tree = load_menu_files([plan], display=lambda p: p.name)
    problems = check_menus(tree, entries={"12320": "direct"}, emergency_required={"12320"})
    assert [str(p) for p in problems] == [
        "direct.yaml:3: nodes.direct: line 12320 must offer key 0 for emergencies, "
        "but entry 'direct' reaches no menu"
    ]


def test_duplicate_node_across_files_names_the_first(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("entries: [x]\nnodes:\n  x: {verb: route}\n")
    with pytest.raises(ConfigError) as caught:
        load_menu_files(sorted(tmp_path.glob("*.yaml")), display=lambda p: p.name)
    assert [str(p) for p in caught.value.problems] == [
        "b.yaml:1: entry 'x' is already defined at a.yaml:1",
        "b.yaml:3: node 'x' is already defined at a.yaml:3",
    ]


def test_empty_dialplans_folder_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no dialplan files"):
        load_menus(Home(tmp_path))


def test_json_schema_covers_every_verb() -> None:
    schema = menu_json_schema()
    json.dumps(schema)
    mapping = schema["properties"]["nodes"]["additionalProperties"]["discriminator"]["mapping"]
    assert set(mapping) == set(VERBS)
    assert schema["additionalProperties"] is False
    assert "else" in json.dumps(schema["$defs"]["ConditionNode"])


def _prompt_home(tmp_path: Path) -> tuple[Home, MenuTree]:
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "sounds").mkdir()
    (tmp_path / "dialplans" / "p.yaml").write_text(
        "prompts:\n"
        "  hello: {zh: 您好, en: Hello}\n"
        "  recorded: {zh: 旧文本, en: Old text, file: {zh: sounds/rec_zh.wav}}\n"
        "entries: [main]\n"
        "nodes:\n"
        "  main: {verb: play, prompt: [hello, recorded], next: bye}\n"
        "  bye: {verb: hangup}\n",
        encoding="utf-8",
    )
    home = Home(tmp_path)
    return home, load_menus(home)


def test_prompt_check_reports_missing_recordings_and_unbuilt_texts(tmp_path: Path) -> None:
    home, tree = _prompt_home(tmp_path)
    messages = [str(p) for p in check_prompts(tree, home)]
    assert messages == [
        "dialplans/p.yaml:2: English (en) prompt not synthesized yet (build the prompts)",
        "dialplans/p.yaml:2: Mandarin (zh) prompt not synthesized yet (build the prompts)",
        "dialplans/p.yaml:3: English (en) prompt not synthesized yet (build the prompts)",
        "dialplans/p.yaml:3: recorded Mandarin (zh) prompt not found: sounds/rec_zh.wav",
    ]


def test_build_prompts_synthesizes_once_and_then_all_play(tmp_path: Path) -> None:
    home, tree = _prompt_home(tmp_path)
    (tmp_path / "sounds" / "rec_zh.wav").write_bytes(b"RIFF")
    first = build_prompts(tree, home)
    assert (len(first.built), len(first.unchanged), first.failed) == (3, 0, [])
    again = build_prompts(tree, home)
    assert (len(again.built), len(again.unchanged)) == (0, 3)
    assert check_prompts(tree, home) == []
    header = first.built[0].read_bytes()[:44]
    assert header[:4] == b"RIFF"
    assert int.from_bytes(header[24:28], "little") == 8000  # sample rate
    assert int.from_bytes(header[22:24], "little") == 1  # mono


def test_generated_tree_is_valid_and_quick(tmp_path: Path) -> None:
    plan = tmp_path / "big.yaml"
    plan.write_text(generate_dialplan(500), encoding="utf-8")
    started = time.perf_counter()
    tree = load_menu_files([plan])
    problems = check_menus(
        tree,
        entries={"12345": "n0"},
        emergency_required={"12345"},
        known_categories=CATEGORIES,
        known_units=UNITS,
    )
    assert problems == []
    assert 400 <= len(tree.nodes) <= 1000
    assert time.perf_counter() - started < 5
