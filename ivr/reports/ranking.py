"""Department ranking (考评, issue 9 part 4): a weighted score per unit, from
config/ranking.yaml.

Each unit gets rates between 0 and 1 from the tickets it handled (see
:mod:`ivr.reports.metrics` for their definitions):

- ``answer_rate``: calls it answered / calls offered to its queues;
- ``service_level``: calls it answered within the threshold / calls offered;
- ``on_time_rate``: tickets resolved by their deadline / tickets due;
- ``satisfaction_rate``: follow-ups satisfied or basically satisfied / follow-ups rated;
- ``returned_rate``: tickets it sent back (退单, from the audit trail) / tickets it received
  (those it holds now plus those it sent back); it counts as ``1 - returned_rate``, since
  fewer returns is better.

score = 100 × Σ weight × rate / Σ weight, over the weighted rates the unit has data for (a
unit nobody rated yet is judged on the rest, not given 0). Units with fewer than
``min_tickets`` tickets, or with no data for any weighted rate, are listed without a rank.
Equal scores share a rank (1, 2, 2, 4).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ivr.home import Home
from ivr.reports.metrics import DEFAULT_ANSWER_WITHIN_SECONDS, NO_VALUE, measure, ratio
from ivr.reports.records import TicketRecord
from ivr.routing.schema import LEVELS, Level
from ivr.yamlsource import ConfigError, Problem, YamlDocument, load_yaml, validate_model

RANKING_FILE = "ranking.yaml"


class RankingWeights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    answer_rate: float = Field(default=0.0, ge=0)
    service_level: float = Field(default=0.0, ge=0)
    on_time_rate: float = Field(default=0.0, ge=0)
    satisfaction_rate: float = Field(default=0.0, ge=0)
    returned_rate: float = Field(default=0.0, ge=0)

    def as_mapping(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in type(self).model_fields}


class RankingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: RankingWeights
    #: Units with fewer tickets in the period are listed without a rank.
    min_tickets: int = Field(default=1, ge=1)
    #: ``level``: districts are ranked among districts, streets among streets...
    rank_within: Literal["all", "level"] = "level"
    #: Only units of these levels are ranked (all when left out).
    levels: tuple[Level, ...] | None = None
    #: The service level's threshold, in seconds of waiting.
    answer_within_seconds: float = Field(default=DEFAULT_ANSWER_WITHIN_SECONDS, gt=0)


DEFAULT_RANKING = RankingConfig(
    weights=RankingWeights(
        answer_rate=0.25, on_time_rate=0.3, satisfaction_rate=0.3, returned_rate=0.15
    ),
)


@dataclass(frozen=True)
class RankedUnit:
    #: 1 for the best of its group; None when the unit is not ranked.
    rank: int | None
    #: The level the unit is ranked within, or ``all``.
    group: str
    unit: str
    level: str | None
    tickets: int
    answer_rate: float | None
    service_level: float | None
    on_time_rate: float | None
    satisfaction_rate: float | None
    returned_rate: float | None
    score: float | None
    #: Why the unit has no rank, if it has none.
    unranked_because: str | None = None

    def rate(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value


def _weight_problems(doc: YamlDocument) -> list[Problem]:
    data = doc.data if isinstance(doc.data, dict) else {}
    weights = data.get("weights")
    if not isinstance(weights, dict):
        return []
    numbers = [
        w for w in weights.values() if isinstance(w, int | float) and not isinstance(w, bool)
    ]
    if len(numbers) == len(weights) and not any(w > 0 for w in numbers):
        return [doc.problem(("weights",), "weights: at least one weight must be above 0")]
    return []


def ranking_from_document(doc: YamlDocument) -> RankingConfig:
    problems = _weight_problems(doc)
    try:
        config = validate_model(RankingConfig, doc)
    except ConfigError as exc:
        raise ConfigError([*exc.problems, *problems]) from exc
    if problems:
        raise ConfigError(problems)
    return config


def load_ranking_file(path: Path, display_name: str | None = None) -> RankingConfig:
    return ranking_from_document(load_yaml(path, display_name))


def load_ranking(home: Home) -> RankingConfig:
    """config/ranking.yaml of ``home``; without the file, :data:`DEFAULT_RANKING`."""
    path = home.config_dir / RANKING_FILE
    if not path.exists():
        return DEFAULT_RANKING
    return load_ranking_file(path, home.display(path))


def score_of(rates: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """100 × the weighted mean of the rates that have data; returned_rate counts inverted."""
    total = weight_sum = 0.0
    for name, weight in weights.items():
        value = rates.get(name)
        if weight <= 0 or value is None:
            continue
        total += weight * (1.0 - value if name == "returned_rate" else value)
        weight_sum += weight
    return 100.0 * total / weight_sum if weight_sum else None


def _competition_ranks(units: Sequence[RankedUnit]) -> list[RankedUnit]:
    """Best score first; equal scores (to 1e-9) share a rank."""
    ordered = sorted(units, key=lambda u: (-(u.score or 0.0), u.unit))
    ranked: list[RankedUnit] = []
    for position, unit in enumerate(ordered, start=1):
        previous = ranked[-1] if ranked else None
        same = (
            previous is not None
            and previous.score is not None
            and unit.score is not None
            and abs(previous.score - unit.score) < 1e-9
        )
        rank = previous.rank if same and previous is not None else position
        ranked.append(replace(unit, rank=rank))
    return ranked


def rank_units(
    records: Iterable[TicketRecord],
    config: RankingConfig,
    *,
    now: datetime,
    unit_levels: Mapping[str, str] | None = None,
) -> list[RankedUnit]:
    """The ranking table: ranked units group by group (by level, city first, when
    ``rank_within`` is level), best first, then the unranked ones. ``unit_levels`` (unit ->
    level, from routing) wins over the level written on the tickets."""
    held: dict[str, list[TicketRecord]] = defaultdict(list)
    sent_back: dict[str, set[str]] = defaultdict(set)
    seen_levels: dict[str, str] = {}
    for record in records:
        if record.unit:
            held[record.unit].append(record)
            if record.level:
                seen_levels.setdefault(record.unit, record.level)
        for unit in record.returned_by:
            sent_back[unit].add(record.id)
    levels = {**seen_levels, **(unit_levels or {})}
    weights = config.weights.as_mapping()
    rows: list[RankedUnit] = []
    for unit in sorted(set(held) | set(sent_back)):
        level = levels.get(unit)
        if config.levels is not None and level not in config.levels:
            continue
        metrics = measure(held[unit], now=now, answer_within=config.answer_within_seconds)
        received = {record.id for record in held[unit]} | sent_back[unit]
        rates: dict[str, float | None] = {
            "answer_rate": metrics.answer_rate,
            "service_level": metrics.service_level,
            "on_time_rate": metrics.on_time_rate,
            "satisfaction_rate": metrics.satisfaction_rate,
            "returned_rate": ratio(len(sent_back[unit]), len(received)),
        }
        score = score_of(rates, weights)
        why: str | None = None
        if len(received) < config.min_tickets:
            why = f"fewer than {config.min_tickets} tickets"
        elif score is None:
            why = "no data for any weighted rate"
        rows.append(
            RankedUnit(
                rank=None,
                group=(level or NO_VALUE) if config.rank_within == "level" else "all",
                unit=unit,
                level=level,
                tickets=len(received),
                score=score,
                unranked_because=why,
                **rates,
            )
        )
    top_down = tuple(reversed(LEVELS))
    groups = sorted(
        {row.group for row in rows},
        key=lambda g: (top_down.index(g) if g in top_down else len(top_down), g),
    )
    table: list[RankedUnit] = []
    for group in groups:
        members = [row for row in rows if row.group == group]
        table += _competition_ranks([row for row in members if row.unranked_because is None])
        table += [row for row in members if row.unranked_because is not None]
    return table
