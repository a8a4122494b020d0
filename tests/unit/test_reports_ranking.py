"""Department ranking: scores by hand, weights, ties, and config/ranking.yaml errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.home import Home
from ivr.reports.ranking import (
    DEFAULT_RANKING,
    RankingConfig,
    RankingWeights,
    load_ranking,
    load_ranking_file,
    rank_units,
    score_of,
)
from ivr.reports.records import TicketRecord, record_of
from ivr.tickets.model import AuditEntry, Ticket
from ivr.yamlsource import ConfigError

NOW = datetime(2026, 3, 31, tzinfo=UTC)
DAY = datetime(2026, 3, 2, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
EQUAL = RankingWeights(answer_rate=1, on_time_rate=1, satisfaction_rate=1, returned_rate=1)


def ticket(n: int, unit: str, **fields: object) -> TicketRecord:
    return TicketRecord(id=f"t{n}", created_at=DAY, unit=unit, **fields)  # type: ignore[arg-type]


def handled(n: int, unit: str, *, on_time: bool, rating: str | None) -> TicketRecord:
    """An answered call that became a matter, resolved on time or a day late."""
    deadline = DAY + timedelta(days=1)
    return ticket(
        n, unit, outcome="answered", answered_at=DAY, wait_seconds=5, status="closed",
        deadline=deadline, resolved_at=deadline + timedelta(hours=-1 if on_time else 24),
        rating=rating,
    )  # fmt: skip


RECORDS = [
    # a: 4 held, all answered, on time 1/2... plus one it sent back (now at b).
    handled(1, "a", on_time=True, rating="satisfied"),
    handled(2, "a", on_time=False, rating="dissatisfied"),
    ticket(3, "a", outcome="answered", answered_at=DAY),
    ticket(4, "a", outcome="answered", answered_at=DAY),
    # b: 2 offered, 1 answered; everything else perfect; holds the ticket a returned.
    handled(5, "b", on_time=True, rating="satisfied"),
    ticket(6, "b", outcome="abandoned", route_hops=1),
    ticket(7, "b", status="assigned", returned_by=("a",)),
    # c: one ticket only.
    handled(8, "c", on_time=True, rating="satisfied"),
]


def test_score_by_hand() -> None:
    config = RankingConfig(weights=EQUAL, rank_within="all")
    rows = {row.unit: row for row in rank_units(RECORDS, config, now=NOW)}
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert (a.tickets, a.answer_rate, a.on_time_rate, a.satisfaction_rate) == (5, 1.0, 0.5, 0.5)
    assert a.returned_rate == pytest.approx(1 / 5)
    assert a.score == pytest.approx(100 * (1 + 0.5 + 0.5 + 0.8) / 4)
    assert (b.tickets, b.answer_rate, b.on_time_rate, b.satisfaction_rate) == (3, 0.5, 1.0, 1.0)
    assert b.returned_rate == 0.0
    assert b.score == pytest.approx(100 * (0.5 + 1 + 1 + 1) / 4)
    assert c.score == pytest.approx(100.0)
    assert [(row.rank, row.unit) for row in rank_units(RECORDS, config, now=NOW)] == [
        (1, "c"),
        (2, "b"),
        (3, "a"),
    ]


def test_weights_change_the_order() -> None:
    answering = RankingConfig(weights=RankingWeights(answer_rate=1), rank_within="all")
    rows = rank_units(RECORDS, answering, now=NOW)
    # a and c answer everything: they share rank 1, and b comes third.
    assert [(row.rank, row.unit, row.score) for row in rows] == [
        (1, "a", 100.0),
        (1, "c", 100.0),
        (3, "b", 50.0),
    ]
    returns = RankingConfig(weights=RankingWeights(returned_rate=3, on_time_rate=1),
                            rank_within="all")  # fmt: skip
    scores = {row.unit: row.score for row in rank_units(RECORDS, returns, now=NOW)}
    assert scores["a"] == pytest.approx(100 * (3 * 0.8 + 0.5) / 4)


def test_missing_rates_are_left_out_not_counted_as_zero() -> None:
    assert score_of({"answer_rate": 0.5, "satisfaction_rate": None},
                    {"answer_rate": 1, "satisfaction_rate": 3}) == pytest.approx(50.0)  # fmt: skip
    assert score_of({"answer_rate": None}, {"answer_rate": 1}) is None
    records = [ticket(1, "quiet", status="assigned")]
    config = RankingConfig(weights=RankingWeights(satisfaction_rate=1))
    (row,) = rank_units(records, config, now=NOW)
    assert row.rank is None and row.score is None
    assert row.unranked_because == "no data for any weighted rate"


def test_min_tickets_levels_and_groups() -> None:
    config = RankingConfig(weights=EQUAL, min_tickets=2)
    levels = {"a": "street", "b": "street", "c": "district"}
    rows = rank_units(RECORDS, config, now=NOW, unit_levels=levels)
    assert [(row.group, row.rank, row.unit) for row in rows] == [
        ("district", None, "c"),
        ("street", 1, "b"),
        ("street", 2, "a"),
    ]
    assert rows[0].unranked_because == "fewer than 2 tickets"
    only_streets = RankingConfig(weights=EQUAL, levels=("street",))
    assert {row.unit for row in rank_units(RECORDS, only_streets, now=NOW,
                                           unit_levels=levels)} == {"a", "b"}  # fmt: skip


def test_levels_written_on_tickets_are_used_without_routing() -> None:
    records = [ticket(1, "x", level="community", outcome="answered", answered_at=DAY)]
    (row,) = rank_units(records, DEFAULT_RANKING, now=NOW)
    assert (row.group, row.level, row.rank) == ("community", "community", 1)


def test_returns_read_from_the_audit_trail() -> None:
    stored = Ticket(id="T20260302-000001", created_at=DAY, status="assigned", unit="b",
                    route_hops=[], deadline=DAY + timedelta(days=2))  # fmt: skip
    history = [
        AuditEntry(entry=3, ticket_id=stored.id, at=DAY + timedelta(hours=2), actor="ann",
                   action="return", note="by a: not ours"),
        AuditEntry(entry=2, ticket_id=stored.id, at=DAY + timedelta(hours=1), actor="ann",
                   action="resolve"),
        AuditEntry(entry=4, ticket_id=stored.id, at=DAY + timedelta(hours=3), actor="ann",
                   action="resolve"),
        AuditEntry(entry=5, ticket_id=stored.id, at=DAY + timedelta(hours=4), actor="x",
                   action="return", note="odd"),
    ]  # fmt: skip
    record = record_of(stored, history)
    assert record.returned_by == ("a", "(unknown)")
    assert record.resolved_at == DAY + timedelta(hours=3)
    assert record.route_hops == 0


def test_the_sample_config_loads() -> None:
    config = load_ranking_file(REPO / "config" / "ranking.yaml")
    assert config.weights.on_time_rate == 0.3 and config.min_tickets == 5
    assert load_ranking(Home(REPO)) == config


def test_a_home_without_the_file_gets_the_default(tmp_path: Path) -> None:
    assert load_ranking(Home(tmp_path)) is DEFAULT_RANKING


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ranking.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "weights:\n"
        "  answer_rate: -1\n"
        "  speed: 2\n"
        "min_tickets: 0\n"
        "rank_within: sometimes\n"
        "levels: [street, village]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_ranking_file(path, "config/ranking.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("config/ranking.yaml:2: weights.answer_rate: ")
    assert "greater than or equal to 0" in lines[0]
    assert lines[1] == "config/ranking.yaml:3: weights.speed: unknown field"
    assert lines[2].startswith("config/ranking.yaml:4: min_tickets: ")
    assert lines[3].startswith("config/ranking.yaml:5: rank_within: ")
    assert lines[4].startswith("config/ranking.yaml:6: levels.1: ")


def test_all_weights_zero_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing weighs\nweights:\n  answer_rate: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_ranking_file(path, "ranking.yaml")
    # The line of the weights themselves (the mapping starts on line 3).
    assert str(caught.value) == "ranking.yaml:3: weights: at least one weight must be above 0"


def test_missing_weights_and_yaml_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_ranking_file(write(tmp_path, "min_tickets: 3\n"), "ranking.yaml")
    assert str(caught.value).startswith("ranking.yaml:1: weights: ")
    with pytest.raises(ConfigError) as caught:
        load_ranking_file(write(tmp_path, "weights: {answer_rate: 1\n"), "ranking.yaml")
    assert str(caught.value).startswith("ranking.yaml:")
    assert "YAML syntax" in str(caught.value)
