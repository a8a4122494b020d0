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


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_ok(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000  # axes, bars and labels, not an empty canvas


def test_service_by_level_per_day_as_csv(home: Home) -> None:
    start = TODAY_NOON - timedelta(days=2)
    code, out, err = _run(home, "service", "--by", "level", "--period", "day",
                          "--since", start.date().isoformat(), "--format", "csv")  # fmt: skip
    assert code == 0, err
    rows = {(row["group"], row["period"]): row for row in csv.DictReader(out.splitlines())}
    day = (start + timedelta(hours=8)).date().isoformat()  # Shanghai's calendar day
    # All three calls end at street level (the consumer matter was sent back by amr and
    # handed to s-east-1): answered after 12 s, abandoned after 40 s, answered after 30 s.
    assert [key for key in rows if key[1] == day] == [("street", day)]
    street = rows[("street", day)]
    assert (street["calls"], street["offered"], street["answered"], street["abandoned"]) == (
        "3", "3", "2", "1"
    )  # fmt: skip
    # Only the 12 s wait is within the 20 s of the service level.
    assert street["answered_within"] == "1"
    assert float(street["service_level"]) == pytest.approx(1 / 3)
    assert float(street["average_wait"]) == pytest.approx(82 / 3)
    assert float(street["p90_wait"]) == 40.0 and float(street["average_talk"]) == 90.0
    # Both assigned matters had 24 h, now past: the worked one was resolved within them, the
    # returned one is still open.
    assert (street["due"], street["resolved_on_time"], float(street["on_time_rate"])) == (
        "2", "1", 0.5
    )  # fmt: skip
    assert (street["rated"], street["satisfied"], float(street["satisfaction_rate"])) == (
        "1", "1", 1.0
    )  # fmt: skip
    rows_json = _run(home, "service", "--by", "level", "--period", "day", "--since",
                     start.date().isoformat(), "--format", "json")[1]  # fmt: skip
    assert len(json.loads(rows_json)) == len(rows)


def test_service_plot_is_a_png(home: Home, tmp_path: Path) -> None:
    for args in (["--by", "unit", "--period", "week"], ["--by", "line"]):
        plot = tmp_path / f"service-{args[1]}.png"
        code, _, err = _run(home, "service", *args, "--plot", str(plot), "--format", "json")
        assert code == 0, err
        _png_ok(plot)


def test_lines_as_csv_and_plot(home: Home, tmp_path: Path) -> None:
    plot = tmp_path / "lines.png"
    code, out, err = _run(home, "lines", "--format", "csv", "--plot", str(plot))
    assert code == 0, err
    reader = csv.DictReader(out.splitlines())
    rows = {row["line"]: row for row in reader}
    months = [name for name in reader.fieldnames or [] if name[:2] == "20"]
    # 12315 took one call, the day before yesterday; 12320 none.
    assert sum(int(rows["12315"][month]) for month in months) == 1
    assert rows["12315"]["total"] == "1" and rows["12320"]["total"] == "0"
    # 12345: 2 calls two days ago, 28 noise calls, 9 environment calls today.
    assert rows["12345"]["total"] == "39"
    assert rows["12315"]["name"] and rows["12345"]["kind"]
    _png_ok(plot)


def test_hotspots_as_csv_and_plot(home: Home, tmp_path: Path) -> None:
    plot = tmp_path / "hotspots.png"
    code, out, err = _run(home, "hotspots", "--format", "csv", "--plot", str(plot))
    assert code == 0, err
    [row] = csv.DictReader(out.splitlines())
    assert (row["place"], row["category"], row["count"]) == ("c-west-1-1", "environment", "9")
    assert len(row["ticket_ids"].split()) == 9
    _png_ok(plot)


def test_ranking_as_csv(home: Home) -> None:
    code, out, err = _run(home, "ranking", "--format", "csv")
    assert code == 0, err
    rows = {row["unit"]: row for row in csv.DictReader(out.splitlines())}
    assert float(rows["amr"]["returned_rate"]) == 1.0


def test_a_plot_that_cannot_be_written_is_one_line(home: Home, tmp_path: Path) -> None:
    code, _, err = _run(home, "lines", "--plot", str(tmp_path / "missing" / "lines.png"))
    assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1


def test_the_service_level_threshold_comes_from_the_settings(
    tmp_path: Path, home: Home
) -> None:
    """The report's service level uses the same threshold as /metrics unless told another:
    at 10 s, the call answered after 12 s is no longer within it."""
    import shutil

    strict = Home(tmp_path / "strict")
    shutil.copytree(home.root, strict.root)
    settings = strict.config_dir / "hotline.yaml"
    settings.write_text("reports:\n  answer_within_seconds: 10\n", encoding="utf-8")

    def level(*args: str) -> float:
        code, out, err = _run(strict, "service", "--by", "line", "--json", *args)
        assert code == 0, err
        return next(row["service_level"] for row in json.loads(out) if row["group"] == "12345")

    assert level() == 0.0
    assert level("--answer-within", "20") == 0.5
