"""``ivr recordings purge``: remove call recordings and voice messages past the retention time,
keeping those of tickets still open. Errors are one line on stderr with exit code 1."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ivr.cli import app, home_of
from ivr.recordings import PurgeReport, purge
from ivr.settings import load_settings
from ivr.tickets.cli import _print_json, _with_store
from ivr.tickets.store import TicketStore, utc_now
from ivr.yamlsource import ConfigError

recordings_app = typer.Typer(
    name="recordings",
    help="Call recordings and voice messages under recordings/YYYY/MM/DD/.",
    no_args_is_help=True,
)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _show(report: PurgeReport) -> None:
    verb = "would remove" if report.dry_run else "removed"
    console = Console()
    if report.dry_run and report.removed:
        table = Table(title="recordings to remove")
        table.add_column("file")
        for path in report.removed:
            table.add_row(path)
        console.print(table)
    typer.echo(
        f"{verb} {len(report.removed)} recording(s), {_size(report.bytes_freed)}; "
        f"kept {len(report.kept_open)} of open tickets"
    )


@recordings_app.command("purge")
def purge_command(
    ctx: typer.Context,
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than",
            min=1,
            metavar="DAYS",
            help="Remove recordings older than this many days "
            "(default: recordings.retention_days of config/hotline.yaml).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Remove recordings past the retention time, except those of open tickets."""
    home = home_of(ctx)
    if older_than is None:
        try:
            older_than = load_settings(home).recordings.retention_days
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    days = older_than
    now = utc_now()

    async def work(store: TicketStore) -> PurgeReport:
        try:
            return await purge(home, store, older_than_days=days, now=now, dry_run=dry_run)
        except OSError as exc:
            # Not the database's fault: say which folder failed.
            typer.echo(f"error: {home.display(home.recordings_dir)}: {exc}", err=True)
            raise typer.Exit(1) from None

    report = _with_store(ctx, work)
    if as_json:
        _print_json(report.as_json())
    else:
        _show(report)


app.add_typer(recordings_app, name="recordings", help="Call recordings: purge old ones.")
