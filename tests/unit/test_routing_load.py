"""load_routing(): every problem of routing/*.yaml reported as file:line, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.home import Home
from ivr.routing import load_routing
from ivr.yamlsource import ConfigError

CATEGORIES = """\
categories:
  - code: help
    name: {zh: 求助, en: Help}
    kind: help
  - code: consumer
    name: {zh: 消费, en: Consumer}
    kind: complaint
"""
UNITS = """\
units:
  - code: city
    name: {zh: 市}
    level: city
    categories: all
  - code: d1
    name: {zh: 区}
    level: district
    parent: city
    categories: [help]
    dids: ["0211"]
  - code: c1
    name: {zh: 社区}
    level: community
    parent: d1
    categories: [help]
"""
AGENTS = """\
agents:
  - {id: "1001", name: A, unit: city}
  - {id: "1002", name: B, unit: c1}
"""
LINES = """\
lines:
  - {number: "12345", name: {zh: 热线}, kind: hotline, entry: main}
  - number: "12315"
    name: {zh: 消费}
    kind: legacy
    entry: legacy_consumer
    preset: {category: consumer, unit: city}
"""
BASE = {"categories.yaml": CATEGORIES, "units.yaml": UNITS, "agents.yaml": AGENTS,
        "lines.yaml": LINES}


def load(tmp_path: Path, **files: str) -> list[str]:
    """Problems of BASE with ``files`` (name with _ for .) replacing or adding files."""
    routing = tmp_path / "routing"
    routing.mkdir()
    contents = dict(BASE)
    contents.update({name.replace("_yaml", ".yaml"): text for name, text in files.items()})
    for name, text in contents.items():
        (routing / name).write_text(text, encoding="utf-8")
    try:
        load_routing(Home(tmp_path))
    except ConfigError as error:
        return [str(problem) for problem in error.problems]
    return []


def test_base_is_valid(tmp_path: Path) -> None:
    assert load(tmp_path) == []


def test_sample_routing_of_the_repository_is_valid() -> None:
    tables = load_routing(Home(Path(__file__).resolve().parents[2]))
    assert tables.city == "city"
    assert len(tables.agents) <= 20


def test_no_files(tmp_path: Path) -> None:
    (tmp_path / "routing").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_routing(Home(tmp_path))
    assert str(caught.value) == "routing:1: no routing files (*.yaml)"


def test_schema_errors_of_every_file_at_once(tmp_path: Path) -> None:
    units = UNITS.replace("    categories: [help]\n    dids", "    colour: red\n"
                          "    categories: [help]\n    dids")
    agents = AGENTS.replace('"1002"', "1002")
    rules = "rules:\n  - name: x\n    match: {time: {mon: ['25:00-26:00']}}\n    target: city\n"
    assert load(tmp_path, units_yaml=units, agents_yaml=agents, rules_yaml=rules) == [
        "routing/agents.yaml:3: agents.1.id: Value error, write numbers in quotes, e.g. '1002'",
        "routing/rules.yaml:3: rules.0.match.time: Value error, interval '25:00-26:00' has an "
        "impossible time",
        "routing/units.yaml:10: units.1.colour: unknown field",
    ]


def test_hierarchy_errors(tmp_path: Path) -> None:
    units = UNITS + """\
  - code: s1
    name: {zh: 街}
    level: street
    parent: nowhere
    categories: [help]
  - code: x1
    name: {zh: 甲}
    level: city
    parent: x2
    area: [city]
    categories: [help]
  - code: x2
    name: {zh: 乙}
    level: city
    parent: x1
    area: [city]
    categories: [help]
  - code: c2
    name: {zh: 社区}
    level: community
    parent: c1
    categories: [help]
"""
    assert load(tmp_path, units_yaml=units) == [
        "routing/units.yaml:20: unknown parent unit 'nowhere'",
        "routing/units.yaml:25: parents form a loop: x1 -> x2 -> x1",
        "routing/units.yaml:37: territory 'c2' (community) must sit under a higher level, "
        "but parent 'c1' is community",
    ]


def test_exactly_one_city(tmp_path: Path) -> None:
    units = UNITS.replace("    parent: city\n", "")
    assert load(tmp_path, units_yaml=units) == [
        "routing/units.yaml:2: unit 'city' has no parent, nor do d1: exactly one unit "
        "(the city) may have none",
        "routing/units.yaml:6: unit 'd1' has no parent, nor do city: exactly one unit "
        "(the city) may have none",
    ]


def test_the_root_must_be_level_city(tmp_path: Path) -> None:
    units = UNITS.replace("    level: city", "    level: district", 1).replace(
        "level: district\n    parent: city", "level: street\n    parent: city")
    assert load(tmp_path, units_yaml=units) == [
        "routing/units.yaml:4: unit 'city' has no parent, so it is the city and needs level city",
    ]


def test_overlapping_areas_at_one_level(tmp_path: Path) -> None:
    units = UNITS + """\
  - code: amr
    name: {zh: 市场监管}
    level: district
    parent: city
    area: [d1]
    categories: [consumer]
  - code: amr-2
    name: {zh: 市场监管二}
    level: district
    parent: city
    area: [c1]
    categories: [consumer, help]
  - code: water
    name: {zh: 水务}
    level: district
    parent: city
    kind: utility
    area: [d1]
    categories: [consumer]
"""
    assert load(tmp_path, units_yaml=units) == [
        "routing/units.yaml:23: area of 'amr-2' overlaps 'amr' (routing/units.yaml:17), "
        "both district government units handling consumer in zh",
        # amr-2 serves c1, which lies in the district d1 that also takes help calls.
        "routing/units.yaml:23: area of 'amr-2' overlaps 'd1' (routing/units.yaml:6), "
        "both district government units handling help in zh",
    ]


def test_area_errors(tmp_path: Path) -> None:
    units = UNITS + """\
  - code: amr
    name: {zh: 市场监管}
    level: district
    parent: d1
    area: [nowhere, amr, city]
    categories: [consumer]
    dids: ["0219"]
"""
    assert load(tmp_path, units_yaml=units) == [
        "routing/units.yaml:21: 'amr' is not a territory (it has an area of its own)",
        "routing/units.yaml:21: 'city' lies outside the area of parent 'd1', so calls "
        "overflowing there would leave the caller's area",
        "routing/units.yaml:21: unknown unit 'nowhere'",
        "routing/units.yaml:23: only territories have landing DIDs: a DID locates the caller",
    ]


def test_agent_errors(tmp_path: Path) -> None:
    agents = AGENTS + """\
  - {id: "1001", name: C, unit: city}
  - {id: "1003", name: D, unit: nowhere}
  - {id: "1004", name: E, unit: c1, skills: [consumer, cooking], languages: [zh, en]}
  - {id: "1005", name: F}
"""
    assert load(tmp_path, agents_yaml=agents) == [
        "routing/agents.yaml:7: agents.5.unit: Field required",
    ]
    agents = agents.replace('  - {id: "1005", name: F}\n', "")
    (tmp_path / "second").mkdir()
    assert load(tmp_path / "second", agents_yaml=agents) == [
        "routing/agents.yaml:4: duplicate agent id '1001' (first at routing/agents.yaml:2)",
        "routing/agents.yaml:5: unknown unit 'nowhere'",
        "routing/agents.yaml:6: unit 'c1' does not handle 'consumer'",
        "routing/agents.yaml:6: unit 'c1' has no en queue: add en to its languages",
        "routing/agents.yaml:6: unknown category 'cooking'",
    ]


def test_category_nobody_handles(tmp_path: Path) -> None:
    units = UNITS.replace("categories: all", "categories: [help]")
    lines = LINES.replace("category: consumer, unit: city", "category: consumer")
    assert load(tmp_path, units_yaml=units, lines_yaml=lines) == [
        "routing/categories.yaml:5: no unit at any level handles category 'consumer'",
    ]


def test_line_errors(tmp_path: Path) -> None:
    lines = LINES + """\
  - {number: "12345", name: {zh: 重复}, kind: hotline, entry: main}
  - number: "12320"
    name: {zh: 卫生}
    kind: legacy
    entry: legacy_health
    preset: {category: health, unit: health}
  - number: "12369"
    name: {zh: 环保}
    kind: legacy
    entry: legacy_environment
    preset: {category: consumer, unit: c1}
  - {number: "0211", name: {zh: 区}, kind: legacy, entry: main}
"""
    assert load(tmp_path, lines_yaml=lines) == [
        "routing/lines.yaml:8: duplicate line '12345' (first at routing/lines.yaml:2)",
        "routing/lines.yaml:13: unknown category 'health'",
        "routing/lines.yaml:13: unknown unit 'health'",
        "routing/lines.yaml:18: unit 'c1' does not handle category 'consumer'",
        "routing/units.yaml:11: DID '0211' is also the number of a line",
    ]


def test_duplicate_dids(tmp_path: Path) -> None:
    # c1 gets the DID d1 already has.
    units = UNITS + '    dids: ["0211"]\n'
    assert load(tmp_path, units_yaml=units) == [
        "routing/units.yaml:17: duplicate DID '0211' (also of unit 'd1')",
    ]


def test_rule_errors(tmp_path: Path) -> None:
    rules = """\
rules:
  - name: unknowns
    match: {categories: [cooking], within: nowhere, lines: ["999"]}
    target: nobody
  - name: not-there
    match: {within: c1}
    target: s2
  - name: wrong-target
    match: {categories: [consumer], languages: [en]}
    target: d1
  - name: within-department
    match: {within: amr}
    target: lowest_covering
  - name: everything
    target: city
  - name: too-late
    match: {categories: [help]}
    target: lowest_covering
"""
    units = UNITS + """\
  - code: s2
    name: {zh: 街}
    level: street
    parent: d1
    categories: [help]
  - code: amr
    name: {zh: 市场监管}
    level: city
    parent: city
    area: [city]
    categories: [consumer]
"""
    assert load(tmp_path, rules_yaml=rules, units_yaml=units) == [
        "routing/rules.yaml:3: unknown category 'cooking'",
        "routing/rules.yaml:3: unknown line '999'",
        "routing/rules.yaml:3: unknown unit 'nowhere'",
        "routing/rules.yaml:4: unknown unit 'nobody'",
        "routing/rules.yaml:7: 's2' serves no part of 'c1', the area this rule matches",
        "routing/rules.yaml:10: rule can never route: 'd1' does not handle 'consumer'",
        "routing/rules.yaml:10: rule can never route: 'd1' has no en queue",
        "routing/rules.yaml:12: 'amr' is not a territory: a caller's location is a city, "
        "district, street or community",
        "routing/rules.yaml:16: rule 'too-late' can never match: catch-all rule 'everything' "
        "(routing/rules.yaml:14) matches every call it would",
    ]


def test_rule_shadowed_by_a_wider_rule(tmp_path: Path) -> None:
    rules = """\
rules:
  - name: help-in-d1
    match: {categories: [help, consumer], within: d1}
    target: lowest_covering
  - name: help-in-c1
    match: {categories: [help], within: c1, min_priority: 1}
    target: c1
  - name: help-in-c1-at-night
    match: {categories: [help], within: c1, time: {daily: "20:00-08:00"}}
    target: c1
"""
    assert load(tmp_path, rules_yaml=rules) == [
        "routing/rules.yaml:5: rule 'help-in-c1' can never match: rule 'help-in-d1' "
        "(routing/rules.yaml:2) matches every call it would",
        "routing/rules.yaml:8: rule 'help-in-c1-at-night' can never match: rule 'help-in-d1' "
        "(routing/rules.yaml:2) matches every call it would",
    ]
    narrower_first = rules.replace("categories: [help, consumer], within: d1",
                                   "categories: [help, consumer], within: d1, min_priority: 2")
    (tmp_path / "again").mkdir()
    assert load(tmp_path / "again", rules_yaml=narrower_first) == []


def test_sections_given_twice_and_callers(tmp_path: Path) -> None:
    rules = "timezone: Mars/Olympus\nlocate: [zone, ivr, zone]\n"
    callers = """\
timezone: Asia/Shanghai
callers:
  - {number: "138", unit: c1}
  - {number: "138", unit: d1}
  - {number: "139", unit: nowhere}
"""
    assert load(tmp_path, rules_yaml=rules, callers_yaml=callers) == [
        "routing/callers.yaml:4: duplicate caller number '138' (first at routing/callers.yaml:3)",
        "routing/callers.yaml:5: unknown unit 'nowhere'",
        "routing/rules.yaml:1: timezone is already given in routing/callers.yaml:1",
        "routing/rules.yaml:2: zone is listed twice",
    ]


def test_emergency_boundary(tmp_path: Path) -> None:
    emergency = """\
emergency:
  to_110:
    - {code: fire, name: {zh: 火灾, en: Fire}}
    - {code: fire, name: {zh: 火灾, en: Fire}}
  from_110:
    - {code: fire, name: {zh: 火灾, en: Fire}, category: help}
    - {code: noise, name: {zh: 噪声, en: Noise}, category: noise}
"""
    assert load(tmp_path, emergency_yaml=emergency) == [
        "routing/emergency.yaml:4: duplicate 110 matter 'fire' (first at "
        "routing/emergency.yaml:3)",
        "routing/emergency.yaml:6: 'fire' is in both to_110 and from_110: a matter goes one way",
        "routing/emergency.yaml:7: unknown category 'noise'",
    ]


def test_yaml_syntax_errors_are_reported_with_the_other_files(tmp_path: Path) -> None:
    assert load(tmp_path, rules_yaml="rules: [\n", callers_yaml="callers:\n  - a: [\n") == [
        "routing/callers.yaml:3: YAML syntax: did not find expected node content",
        "routing/rules.yaml:2: YAML syntax: did not find expected node content",
    ]
