"""Deadline tiers from config/deadlines.yaml: the sample, the policy, and bad files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.home import ENGINE_ROOT, Home
from ivr.tickets.deadlines import (
    DEFAULT_POLICY,
    load_deadline_policy,
    load_deadlines,
    parse_duration,
)
from ivr.yamlsource import ConfigError

START = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
SAMPLE = ENGINE_ROOT / "config" / "deadlines.yaml"


def test_sample_file_loads_and_matches_published_tiers() -> None:
    policy = load_deadline_policy(SAMPLE)
    assert policy.tiers == DEFAULT_POLICY.tiers
    assert policy.deadline_for("help", None, START) == START + timedelta(hours=24)
    assert policy.deadline_for("complaint", None, START) == START + timedelta(days=7)
    assert policy.deadline_for("suggestion", None, START) == START + timedelta(days=15)
    assert policy.deadline_for("help.water_outage", None, START) == START + timedelta(hours=2)


@pytest.mark.parametrize(
    ("category", "priority", "tier"),
    [
        ("complaint", None, "complaint"),
        ("complaint.noise", None, "complaint"),
        ("complaint.noise.night", None, "complaint"),
        ("report", None, "complaint"),
        ("praise", None, "suggestion"),
        ("something-new", None, "help"),
        (None, None, "help"),
        ("suggestion", "urgent", "urgent"),
        ("complaint", "normal", "complaint"),
    ],
)
def test_tier_for(category: str | None, priority: str | None, tier: str) -> None:
    assert DEFAULT_POLICY.tier_for(category, priority) == tier


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("1d 12h", timedelta(days=1, hours=12)),
        (24, timedelta(hours=24)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_home_without_file_gets_default(tmp_path: Path) -> None:
    assert load_deadlines(Home(tmp_path)) is DEFAULT_POLICY


def test_home_file_is_used(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "deadlines.yaml").write_text(
        "tiers: {fast: 30m}\ndefault_tier: fast\n", encoding="utf-8"
    )
    policy = load_deadlines(Home(tmp_path))
    assert policy.deadline_for("anything", None, START) == START + timedelta(minutes=30)


def test_every_problem_reported_with_file_and_line(tmp_path: Path) -> None:
    home = Home(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "deadlines.yaml").write_text(
        "tiers:\n"
        "  urgent: 2 hours\n"  # line 2: not a duration
        "  help: 24h\n"
        "categories:\n"
        "  help: help\n"
        "  complaint: weekly\n"  # line 6: unknown tier
        "priorities:\n"
        "  urgent: urgnt\n"  # line 8: unknown tier
        "default_tier: nope\n"  # line 9: unknown tier
        "colour: red\n",  # line 10: unknown field
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_deadlines(home)
    text = str(caught.value)
    assert "config/deadlines.yaml:2: tiers.urgent: Value error, '2 hours' is not a duration" in text
    assert "config/deadlines.yaml:6: categories.complaint: unknown tier 'weekly'" in text
    assert "config/deadlines.yaml:8: priorities.urgent: unknown tier 'urgnt'" in text
    assert "config/deadlines.yaml:9: default_tier: unknown tier 'nope'" in text
    assert "config/deadlines.yaml:10: colour: unknown field" in text
    assert len(caught.value.problems) == 5


def test_unknown_tiers_reported_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text(
        "tiers:\n  help: 24h\ncategories:\n  complaint: weekly\npriorities:\n  urgent: urgnt\n"
        "default_tier: nope\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_deadline_policy(path, "deadlines.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "deadlines.yaml:4: categories.complaint: unknown tier 'weekly' (tiers: help)",
        "deadlines.yaml:6: priorities.urgent: unknown tier 'urgnt' (tiers: help)",
        "deadlines.yaml:7: default_tier: unknown tier 'nope' (tiers: help)",
    ]


def test_tiers_must_not_be_empty(tmp_path: Path) -> None:
    path = tmp_path / "deadlines.yaml"
    path.write_text("tiers: {}\ndefault_tier: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deadlines\.yaml:1: tiers: at least one tier"):
        load_deadline_policy(path, "deadlines.yaml")
