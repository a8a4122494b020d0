"""``ivr tickets ...`` as a person and a script use it, on a real SQLite file in a home."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ivr.home import Home
from ivr.settings import database_url
from ivr.tickets.cli import tickets_app
from ivr.tickets.store import TicketStore

runner = CliRunner()


def _app(home: Home) -> typer.Typer:
    """Stands in for the main CLI, which puts the Home in ctx.obj."""
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = home

    app.add_typer(tickets_app, name="tickets")
    return app


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def _seed(home: Home, count: int = 2) -> list[str]:
    async def main() -> list[str]:
        async with TicketStore(database_url(home)) as store:
            return [
                await store.open_call(
                    f"L{i}", line="12345", caller=f"1380000000{i}", caller_name="[bold]李四",
                    created_at=datetime(2026, 11, 27, 8, i, tzinfo=UTC), category="complaint",
                )
                for i in range(count)
            ]

    return asyncio.run(main())


def _run(home: Home, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(_app(home), ["tickets", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_list_and_show_as_json(home: Home) -> None:
    first, second = _seed(home)
    code, out, _ = _run(home, "list", "--json")
    assert code == 0
    assert [t["id"] for t in json.loads(out)] == [second, first]
    code, out, _ = _run(home, "show", first, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == first and shown["caller_name"] == "[bold]李四"
    assert list(shown)[:3] == ["id", "number", "line"]


def test_tables_for_people(home: Home) -> None:
    first, _ = _seed(home)
    code, out, _ = _run(home, "list")
    assert code == 0 and first in out and "2 ticket(s)" in out
    code, out, _ = _run(home, "show", first)
    assert code == 0 and "[bold]李四" in out  # user text is not rich markup


def test_work_a_ticket_through_the_cli(home: Home) -> None:
    first, second = _seed(home)
    code, out, _ = _run(home, "assign", first, "district-a", "--level", "district",
                        "--actor", "alice", "--note", "night noise")
    assert code == 0 and out.startswith(f"{first}: assigned, unit district-a, deadline ")
    code, out, _ = _run(home, "dispatch", first, "street-3", "--actor", "bob", "--json")
    assert code == 0 and json.loads(out)["unit"] == "street-3"
    assert _run(home, "return", first, "not ours", "--actor", "bob")[0] == 0
    assert _run(home, "assign", first, "district-b")[0] == 0
    assert _run(home, "start", first)[0] == 0
    assert _run(home, "resolve", first, "--note", "fixed")[0] == 0
    assert _run(home, "follow-up", first, "满意")[0] == 0
    assert _run(home, "evaluate", first, "--score", "95")[0] == 0
    assert _run(home, "note", first, "well done")[0] == 0
    assert _run(home, "close", first)[0] == 0
    code, out, _ = _run(home, "merge", second, first)
    assert code == 0 and f"merged into {first}" in out
    code, out, _ = _run(home, "list", "--status", "closed", "--json")
    assert [t["id"] for t in json.loads(out)] == [first]
    code, out, _ = _run(home, "history", first, "--json")
    actions = [row["action"] for row in json.loads(out)]
    assert actions == ["accept", "assign", "dispatch", "return", "assign", "start", "resolve",
                       "follow_up", "evaluate", "note", "close", "merge"]
    assert json.loads(out)[1]["actor"] == "alice"
    code, out, _ = _run(home, "history", first)
    assert code == 0 and "night noise" in out


def test_errors_are_one_line_with_exit_1(home: Home) -> None:
    first, _ = _seed(home)
    code, out, err = _run(home, "show", "T20261127-000099")
    assert (code, out, err) == (1, "", "error: unknown ticket T20261127-000099\n")
    code, _, err = _run(home, "resolve", first)
    code, _, err = _run(home, "start", first)
    assert code == 1
    assert err == (f"error: ticket {first} is resolved: cannot start; "
                   "allowed actions: follow_up, note\n")
    code, _, err = _run(home, "list", "--status", "bogus")
    assert code == 1 and err.startswith("error: unknown status 'bogus'")
    code, _, err = _run(home, "follow-up", first, "meh")
    assert code == 1 and err.startswith("error: unknown rating 'meh'")


def test_bad_config_and_unreachable_database_are_one_line(home: Home) -> None:
    config = home.config_dir
    config.mkdir(parents=True)
    (config / "deadlines.yaml").write_text("tiers: {help: soon}\ndefault_tier: help\n",
                                           encoding="utf-8")
    code, _, err = _run(home, "list")
    assert code == 1
    assert err.startswith("error: config/deadlines.yaml:1: tiers.help: Value error")
    (config / "deadlines.yaml").unlink()
    (config / "hotline.yaml").write_text(
        "database:\n  url: postgresql+asyncpg://nobody@127.0.0.1:1/none\n", encoding="utf-8"
    )
    code, _, err = _run(home, "list")
    assert code == 1
    assert err.startswith("error: tickets database postgresql+asyncpg://nobody@127.0.0.1:1/none:")
    assert err.count("\n") == 1


def test_mark_overdue(home: Home) -> None:
    first, _ = _seed(home)
    assert _run(home, "assign", first, "district-a")[0] == 0
    code, out, _ = _run(home, "mark-overdue", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = _run(home, "list", "--overdue", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_calls_owed_and_follow_up_results(home: Home) -> None:
    first, second = _seed(home)

    async def work() -> None:
        async with TicketStore(database_url(home)) as store:
            await store.resolve(first, actor="unit")
            await store.update_call("L1", callback_requested=True,
                                    ended_at=datetime(2026, 11, 27, 8, 5, tzinfo=UTC))

    asyncio.run(work())
    code, out, _ = _run(home, "calls", "--json")
    assert code == 0
    owed = {(row["ticket_id"], row["kind"]): row for row in json.loads(out)}
    assert set(owed) == {(first, "followup"), (second, "callback")}
    assert owed[first, "followup"]["attempts"] == 0 and owed[first, "followup"]["next_at"] == "now"
    code, out, _ = _run(home, "calls")
    assert code == 0 and "2 call(s) owed" in out

    code, out, _ = _run(home, "follow-up", first, "dissatisfied")
    assert code == 0, out
    code, out, _ = _run(home, "list")
    assert "rated dissatisfied" in out and "callback owed" in out
