"""``ivr report ...`` on a copy of the sample home with a real SQLite ticket file."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from deployment_helpers import copy_sample_home, edit
from typer.testing import CliRunner

from ivr.cli.report import report_app
from ivr.home import Home
from ivr.settings import database_url
from ivr.tickets.store import TicketStore

runner = CliRunner()
NOW = datetime.now(UTC).replace(microsecond=0)
TODAY_NOON = NOW.replace(hour=4, minute=0, second=0)  # noon in Shanghai, today or tomorrow


def _app(home: Home) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = home

    app.add_typer(report_app, name="report")
    return app


def _run(home: Home, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(_app(home), ["report", *args], env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


async def _seed(home: Home) -> None:
    async with TicketStore(database_url(home)) as store:
        number = 0

        async def call(when: datetime, **fields: Any) -> str:
            nonlocal number
            number += 1
            return await store.open_call(f"L{number}", created_at=when, **fields)

        # Three calls on 12345 two days ago: one answered and worked through, one abandoned,
        # one on the consumer line answered and returned by amr.
        start = TODAY_NOON - timedelta(days=2)
        worked = await call(start, line="12345", category="urban", location="c-east-1-1")
        await store.update_call("L1", unit="s-east-1", level="street", outcome="answered",
                                answered_at=start + timedelta(seconds=12), wait_seconds=12,
                                talk_seconds=90, route_hops=[{"unit": "s-east-1"}])  # fmt: skip
        await store.assign(worked, "s-east-1", actor="ann", level="street", now=start)
        await store.resolve(worked, actor="bob", now=start + timedelta(hours=1))
        await store.follow_up(worked, "satisfied", actor="ann", now=start + timedelta(hours=2))
        await call(start, line="12345", category="urban", location="c-east-1-1")
        await store.update_call("L2", unit="s-east-1", level="street", outcome="abandoned",
                                wait_seconds=40, route_hops=[{"unit": "s-east-1"}])  # fmt: skip
        returned = await call(start, line="12315", category="consumer")
        await store.update_call(
            "L3",
            unit="amr",
            level="city",
            outcome="answered",
            answered_at=start + timedelta(seconds=30),
            wait_seconds=30,
        )
        await store.assign(returned, "amr", actor="ann", level="city", now=start)
        await store.return_(returned, "not ours", actor="amr-1", now=start)
        await store.assign(returned, "s-east-1", actor="ann", level="street", now=start)
        # A hotspot: one noise matter a day in c-east-1-1 for four weeks, then nine today.
        for day in range(3, 31):
            await call(TODAY_NOON - timedelta(days=day), line="12345", category="urban",
                       location="c-east-1-2")  # fmt: skip
        for _ in range(9):
            await call(TODAY_NOON, line="12345", category="environment", location="c-west-1-1")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = copy_sample_home(tmp_path_factory.mktemp("home"))
    asyncio.run(_seed(home))
    return home


def test_service_by_line_as_json_and_csv(home: Home, tmp_path: Path) -> None:
    since = (TODAY_NOON - timedelta(days=2)).date().isoformat()
    out_file = tmp_path / "service.csv"
    code, out, err = _run(home, "service", "--by", "line", "--since", since, "--json",
                          "--csv", str(out_file))  # fmt: skip
    assert code == 0, err
    rows = {row["group"]: row for row in json.loads(out)}
    assert {"12345", "12315", "12320", "12369", "88880000"} <= set(rows)
    hotline = rows["12345"]
    assert (hotline["offered"], hotline["answered"], hotline["abandoned"]) == (2, 1, 1)
    assert hotline["service_level"] == 0.5 and hotline["p90_wait"] == 40
    assert (hotline["due"], hotline["resolved_on_time"], hotline["satisfied"]) == (1, 1, 1)
    assert rows["12320"]["calls"] == 0
    with out_file.open(encoding="utf-8") as written:
        assert {row["group"] for row in csv.DictReader(written)} == set(rows)


def test_service_tables_for_people(home: Home) -> None:
    code, out, err = _run(home, "service", "--by", "unit", "--period", "week")
    assert code == 0, err
    assert "Service by unit" in out and "s-east-1" in out and "SL 20s" in out


def test_lines(home: Home) -> None:
    code, out, err = _run(home, "lines", "--json")
    assert code == 0, err
    report = json.loads(out)
    lines = {line["line"]: line for line in report["lines"]}
    assert lines["12315"]["total"] == 1 and lines["12320"]["total"] == 0
    assert report["share_lines_under_idle"] > 0
    code, out, err = _run(home, "lines")
    assert code == 0, err
    assert "12345政务服务便民热线" in out and "line(s) by average month" in out


def test_ranking(home: Home) -> None:
    code, out, err = _run(home, "ranking", "--json")
    assert code == 0, err
    rows = {row["unit"]: row for row in json.loads(out)}
    assert rows["amr"]["returned_rate"] == 1.0
    assert rows["s-east-1"]["satisfaction_rate"] == 1.0
    code, out, err = _run(home, "ranking")
    assert code == 0, err
    assert "Department ranking" in out and "fewer than 5 tickets" in out


def test_a_bad_ranking_file_is_one_line_per_problem(home: Home, tmp_path: Path) -> None:
    broken = copy_sample_home(tmp_path / "broken")
    (broken.var_dir).mkdir(parents=True, exist_ok=True)
    line = edit(broken, "config/ranking.yaml", "min_tickets: 5", "min_tickets: none")
    code, _, err = _run(broken, "ranking")
    assert code == 1
    assert err.startswith(f"error: config/ranking.yaml:{line}: min_tickets: ")


def test_hotspots(home: Home) -> None:
    code, out, err = _run(home, "hotspots", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert [(h["place"], h["category"], h["count"]) for h in found] == [
        ("c-west-1-1", "environment", 9)
    ]
    code, out, err = _run(home, "hotspots", "--all-levels")
    assert code == 0, err
    assert "3 hotspot(s)" in out and "c-west-1-1" in out
