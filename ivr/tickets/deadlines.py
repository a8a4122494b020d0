"""Time limits (限时办结) by category and urgency, from config/deadlines.yaml.

The policy itself is pure: ``policy.deadline_for(category, priority, start)``. Only the
loaders at the bottom read files.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ivr.home import Home
from ivr.yamlsource import ConfigError, Problem, YamlDocument, load_yaml, validate_model

DEADLINES_FILE = "deadlines.yaml"

_DURATION_PART = re.compile(r"(\d+)\s*([dhm])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


def parse_duration(value: object) -> timedelta:
    """``2h``, ``90m``, ``7d`` or ``1d 12h``; a bare number is hours."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2h, 90m or 7d")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return timedelta(hours=value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 2h, 90m or 7d")
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ValueError(f"{value!r} is not a duration such as 2h, 90m or 7d")
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(min_length=1)]


class DeadlinePolicy(BaseModel):
    """Which tier a ticket falls in and how long each tier gives the responsible unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: tier name -> time allowed from assignment.
    tiers: dict[Name, Duration]
    #: category -> tier. A dotted category (``complaint.noise``) falls back to its prefix.
    categories: dict[Name, Name] = {}
    #: priority -> tier; a ticket's priority, when listed here, wins over its category.
    priorities: dict[Name, Name] = {}
    #: The tier of a category listed nowhere (or of a ticket without category).
    default_tier: Name

    def tier_for(self, category: str | None, priority: str | None = None) -> str:
        if priority and priority in self.priorities:
            return self.priorities[priority]
        name = category or ""
        while name:
            if name in self.categories:
                return self.categories[name]
            name = name.rpartition(".")[0]
        return self.default_tier

    def time_allowed(self, category: str | None, priority: str | None = None) -> timedelta:
        return self.tiers[self.tier_for(category, priority)]

    def deadline_for(
        self, category: str | None, priority: str | None, start: datetime
    ) -> datetime:
        return start + self.time_allowed(category, priority)


#: The policy of a home without config/deadlines.yaml: the published tiers.
DEFAULT_POLICY = DeadlinePolicy(
    tiers={
        "urgent": timedelta(hours=2),
        "help": timedelta(hours=24),
        "complaint": timedelta(days=7),
        "suggestion": timedelta(days=15),
    },
    categories={
        "consultation": "help",
        "help": "help",
        "complaint": "complaint",
        "report": "complaint",
        "suggestion": "suggestion",
        "praise": "suggestion",
    },
    priorities={"urgent": "urgent"},
    default_tier="help",
)


def _reference_problems(doc: YamlDocument) -> list[Problem]:
    """Tier names that name no tier, read from the raw data so that they are reported
    together with any schema problem of the same file."""
    data = doc.data if isinstance(doc.data, dict) else {}
    tiers = data.get("tiers")
    if not isinstance(tiers, dict):
        return []
    if not tiers:
        return [doc.problem(("tiers",), "tiers: at least one tier is needed")]
    known = ", ".join(sorted(str(name) for name in tiers))
    references: list[tuple[tuple[str, ...], object]] = [
        (("default_tier",), data.get("default_tier"))
    ]
    for section in ("categories", "priorities"):
        entries = data.get(section)
        if isinstance(entries, dict):
            references += [((section, str(key)), tier) for key, tier in entries.items()]
    return [
        doc.problem(path, f"{'.'.join(path)}: unknown tier {tier!r} (tiers: {known})")
        for path, tier in references
        if isinstance(tier, str) and tier not in tiers
    ]


def policy_from_document(doc: YamlDocument) -> DeadlinePolicy:
    problems = _reference_problems(doc)
    try:
        policy = validate_model(DeadlinePolicy, doc)
    except ConfigError as exc:
        raise ConfigError([*exc.problems, *problems]) from exc
    if problems:
        raise ConfigError(problems)
    return policy


def load_deadline_policy(path: Path, display_name: str | None = None) -> DeadlinePolicy:
    return policy_from_document(load_yaml(path, display_name))


def load_deadlines(home: Home) -> DeadlinePolicy:
    """config/deadlines.yaml of ``home``; without the file, ``DEFAULT_POLICY``."""
    path = home.config_dir / DEADLINES_FILE
    if not path.exists():
        return DEFAULT_POLICY
    return load_deadline_policy(path, home.display(path))
