"""The corpus: every good file loads and checks clean; every bad file reports exactly
the problems written in its ``# expect:`` lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from menu_helpers import CATEGORIES, CORPUS, UNITS

from ivr.menu import check_menus, load_menu_files
from ivr.yamlsource import ConfigError

GOOD = sorted((CORPUS / "good").glob("*.yaml"))
BAD = sorted((CORPUS / "bad").glob("*.yaml"))


def corpus_problems(path: Path) -> list[str]:
    """Load one file; if it loads, check it as line 12345 starting at ``main`` (which
    must then offer key 0 for emergencies), with the sample categories and units."""
    try:
        tree = load_menu_files([path], display=lambda p: p.name)
    except ConfigError as exc:
        return [str(problem) for problem in exc.problems]
    entries = {"12345": "main"} if "main" in tree.nodes else {}
    problems = check_menus(
        tree,
        entries=entries,
        emergency_required=set(entries),
        known_categories=CATEGORIES,
        known_units=UNITS,
    )
    return [str(problem) for problem in problems]


def expected(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("# expect: ")
    ]


def test_corpus_is_not_empty() -> None:
    assert len(GOOD) >= 2
    assert len(BAD) >= 20


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_good_file_is_clean(path: Path) -> None:
    assert corpus_problems(path) == []


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_file_reports_its_expected_problem(path: Path) -> None:
    wanted = expected(path)
    assert wanted, f"{path.name} needs a first-line '# expect: file:line: message' comment"
    assert corpus_problems(path) == wanted


def test_all_problems_of_all_files_come_at_once(tmp_path: Path) -> None:
    names = ["bad_unknown_verb.yaml", "bad_extra_field.yaml", "bad_yaml_syntax.yaml"]
    with pytest.raises(ConfigError) as caught:
        load_menu_files([CORPUS / "bad" / name for name in names], display=lambda p: p.name)
    files = {problem.file for problem in caught.value.problems}
    assert files == set(names)
