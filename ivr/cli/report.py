"""``ivr report ...``: service metrics, line usage, department ranking and hotspots, from the
home's ticket database. Rich tables for people, ``--format csv|json`` for scripts (``--json``
is short for ``--format json``), ``--plot FILE.png`` for a picture; days, weeks and months
are those of the routing's time zone. Errors are one line on stderr with exit code 1."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ivr.cli import app, home_of
from ivr.deployment import Deployment, load_deployment
from ivr.reports.hotspots import (
    DEFAULT_HOTSPOT_SETTINGS,
    Hotspot,
    collapse_nested,
    detect_hotspots,
    places_from_routing,
)
from ivr.reports.load import load_records
from ivr.reports.metrics import (
    GroupBy,
    LineUsageReport,
    Period,
    ServiceMetrics,
    line_usage,
    month_range,
    service_metrics,
)
from ivr.reports.ranking import RankedUnit, load_ranking, rank_units
from ivr.reports.records import TicketRecord
from ivr.tickets.cli import _print_json, _with_store
from ivr.tickets.store import utc_now
from ivr.yamlsource import ConfigError

report_app = typer.Typer(
    name="report",
    help="Reports: service metrics, line usage, department ranking, hotspots.",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (same as --format json).")]
FormatOpt = Annotated[
    OutputFormat, typer.Option("--format", help="table for people, csv or json for scripts.")
]
PlotOpt = Annotated[
    Path | None, typer.Option("--plot", help="Also draw the report as a PNG to this file.")
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only calls since this date (YYYY-MM-DD, local) or ISO time."),
]
#: How many days of tickets the hotspot report shows by default.
HOTSPOT_DAYS = 7


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _deployment(ctx: typer.Context) -> Deployment:
    try:
        return load_deployment(home_of(ctx), check_prompt_files=False)
    except ConfigError as exc:
        _fail(str(exc))


def _since(text: str | None, tz: tzinfo) -> datetime | None:
    """A date is the start of that day in the deployment's zone; a time without zone too."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or time such as 2026-11-27") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _records(ctx: typer.Context, since: datetime | None) -> list[TicketRecord]:
    return _with_store(ctx, lambda store: load_records(store, since=since))


def _chosen(output: OutputFormat, as_json: bool) -> OutputFormat:
    return OutputFormat.JSON if as_json else output


def _csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _plot(path: Path | None, draw: Callable[[ModuleType, Path], None]) -> None:
    """``draw(plots, path)`` with :mod:`ivr.reports.plots`, imported only here: matplotlib
    takes about half a second to load, which every other ``ivr`` command should not pay."""
    if path is None:
        return
    from ivr.reports import plots

    try:
        draw(plots, path)
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _row_json(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(row)
    return {key: value.isoformat() if isinstance(value, date) else value
            for key, value in data.items()}  # fmt: skip


# -- service ----------------------------------------------------------------------------------


def _service_csv(rows: Sequence[ServiceMetrics]) -> str:
    names = [field.name for field in dataclasses.fields(ServiceMetrics)]
    return _csv_text(names, (dataclasses.asdict(row) for row in rows))


def _service_table(rows: Sequence[ServiceMetrics], by: GroupBy, answer_within: float) -> Table:
    table = Table(title=f"Service by {by.value}" if by is not GroupBy.ALL else "Service")
    columns = [
        (by.value, "left"), ("period", "left"), ("calls", "right"), ("offered", "right"),
        ("answered", "right"), ("abandoned", "right"),
        (f"SL {answer_within:g}s", "right"), ("avg wait", "right"), ("p90 wait", "right"),
        ("avg talk", "right"), ("on time", "right"), ("satisfied", "right"),
    ]  # fmt: skip
    for index, (name, justify) in enumerate(columns):
        table.add_column(name, justify=justify, no_wrap=index < 2)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            Text(row.group), row.period, str(row.calls), str(row.offered), str(row.answered),
            str(row.abandoned), _percent(row.service_level), _seconds(row.average_wait),
            _seconds(row.p90_wait), _seconds(row.average_talk),
            f"{row.resolved_on_time}/{row.due} {_percent(row.on_time_rate)}".strip(),
            f"{row.satisfied}/{row.rated} {_percent(row.satisfaction_rate)}".strip(),
        )  # fmt: skip
    return table


@report_app.command("service")
def service(
    ctx: typer.Context,
    by: Annotated[GroupBy, typer.Option("--by", help="One row per unit, level or line.")] = (
        GroupBy.ALL
    ),
    period: Annotated[
        Period | None, typer.Option("--period", help="Split by day, week or month.")
    ] = None,
    since: SinceOpt = None,
    answer_within: Annotated[
        float | None,
        typer.Option(
            "--answer-within",
            min=1,
            help="Service level threshold, seconds of wait "
            "(default: reports.answer_within_seconds of the settings).",
        ),
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Also write the rows to this CSV file.")
    ] = None,
    output: FormatOpt = OutputFormat.TABLE,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Calls offered, answered, abandoned; service level, waits, talk, on-time, satisfaction;
    per unit, level or line, per day, week or month."""
    deployment = _deployment(ctx)
    if answer_within is None:
        # The same threshold as the live service level on /metrics.
        answer_within = deployment.settings.reports.answer_within_seconds
    tz = deployment.routing.timezone
    records = _records(ctx, _since(since, tz))
    rows = service_metrics(
        records,
        now=utc_now(),
        tz=tz,
        by=by,
        period=period,
        answer_within=answer_within,
        groups=deployment.routing.lines if by is GroupBy.LINE else (),
    )
    if csv_file is not None:
        try:
            csv_file.write_text(_service_csv(rows), encoding="utf-8")
        except OSError as exc:
            _fail(f"{csv_file}: {exc.strerror or exc}")
    _plot(
        plot,
        lambda plots, path: plots.plot_service(
            rows, path, by=by.value, answer_within=answer_within
        ),
    )
    output = _chosen(output, as_json)
    if output is OutputFormat.JSON:
        _print_json([_row_json(row) for row in rows])
    elif output is OutputFormat.CSV:
        typer.echo(_service_csv(rows), nl=False)
    else:
        Console().print(_service_table(rows, by, answer_within))


# -- lines ------------------------------------------------------------------------------------


def _lines_table(report: LineUsageReport, deployment: Deployment) -> Table:
    lines = deployment.routing.lines
    table = Table(title=f"Calls per month per line, {report.months[0]} to {report.months[-1]}"
                  if report.months else "Calls per month per line")  # fmt: skip
    for name in ("line", "name", "kind"):
        table.add_column(name)
    show_months = len(report.months) <= 12
    if show_months:
        for month in report.months:
            table.add_column(month[2:], justify="right")
    limits = report.thresholds
    for name in ("total", "avg/month", f"months <{limits.used:,}", f"months <{limits.idle}"):
        table.add_column(name, justify="right")
    for usage in report.lines:
        line = lines.get(usage.line)
        monthly = [str(calls) for _, calls in usage.monthly] if show_months else []
        table.add_row(
            usage.line,
            Text(line.name.zh if line else ""),
            line.kind if line else "",
            *monthly,
            str(usage.total),
            f"{usage.average_per_month:.1f}",
            f"{usage.months_under_used} ({_percent(usage.share_months_under_used)})",
            f"{usage.months_under_idle} ({_percent(usage.share_months_under_idle)})",
        )
    return table


def _lines_csv(report: LineUsageReport, deployment: Deployment) -> str:
    lines = deployment.routing.lines
    fields = ["line", "name", "kind", *report.months, "total", "average_per_month",
              "months_under_used", "months_under_idle"]  # fmt: skip
    rows = []
    for usage in report.lines:
        line = lines.get(usage.line)
        rows.append(
            {
                "line": usage.line,
                "name": line.name.zh if line else "",
                "kind": line.kind if line else "",
                **dict(usage.monthly),
                "total": usage.total,
                "average_per_month": round(usage.average_per_month, 3),
                "months_under_used": usage.months_under_used,
                "months_under_idle": usage.months_under_idle,
            }
        )
    return _csv_text(fields, rows)


@report_app.command("lines")
def lines_report(
    ctx: typer.Context,
    since: SinceOpt = None,
    output: FormatOpt = OutputFormat.TABLE,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Calls per month on 12345 and each old number, as the essay counted Jinhua's lines."""
    deployment = _deployment(ctx)
    tz = deployment.routing.timezone
    since_at = _since(since, tz)
    records = _records(ctx, since_at)
    months = None
    if since_at is not None:
        months = month_range(since_at.astimezone(tz).date(), utc_now().astimezone(tz).date())
    report = line_usage(records, tz=tz, lines=deployment.routing.lines, months=months)
    _plot(plot, lambda plots, path: plots.plot_lines(report, path))
    output = _chosen(output, as_json)
    if output is OutputFormat.CSV:
        typer.echo(_lines_csv(report, deployment), nl=False)
        return
    if output is OutputFormat.JSON:
        _print_json(
            {
                "months": list(report.months),
                "thresholds": dataclasses.asdict(report.thresholds),
                "lines": [_row_json(usage) for usage in report.lines],
                "lines_over_busy": report.lines_over_busy,
                "lines_over_used": report.lines_over_used,
                "share_lines_under_used": report.share_lines_under_used,
                "share_lines_under_idle": report.share_lines_under_idle,
            }
        )
        return
    Console().print(_lines_table(report, deployment))
    limits = report.thresholds
    typer.echo(
        f"{len(report.lines)} line(s) by average month: {report.lines_over_busy} over "
        f"{limits.busy:,} calls, {report.lines_over_used} over {limits.used:,}, "
        f"{_percent(report.share_lines_under_used) or '-'} under {limits.used:,}, "
        f"{_percent(report.share_lines_under_idle) or '-'} under {limits.idle}."
    )


# -- ranking ----------------------------------------------------------------------------------

_RATES = ("answer_rate", "service_level", "on_time_rate", "satisfaction_rate", "returned_rate")


def _ranking_table(
    rows: Sequence[RankedUnit], deployment: Deployment, shown: Sequence[str]
) -> Table:
    table = Table(title="Department ranking")
    for name in ("rank", "group", "unit", "name", "tickets", *shown, "score", "not ranked"):
        justify = "left" if name in {"group", "unit", "name", "not ranked"} else "right"
        table.add_column(name.replace("_", " "), justify=justify)  # type: ignore[arg-type]
    units = deployment.routing.units
    for row in rows:
        unit = units.get(row.unit)
        table.add_row(
            str(row.rank) if row.rank is not None else "-",
            row.group,
            row.unit,
            Text(unit.name.zh if unit else ""),
            str(row.tickets),
            *(_percent(row.rate(name)) for name in shown),
            f"{row.score:.1f}" if row.score is not None else "",
            row.unranked_because or "",
        )
    return table


@report_app.command("ranking")
def ranking(
    ctx: typer.Context,
    since: SinceOpt = None,
    output: FormatOpt = OutputFormat.TABLE,
    as_json: JsonOpt = False,
) -> None:
    """Units scored by the weights of config/ranking.yaml, best first."""
    deployment = _deployment(ctx)
    try:
        config = load_ranking(deployment.home)
    except ConfigError as exc:
        _fail(str(exc))
    records = _records(ctx, _since(since, deployment.routing.timezone))
    levels = {code: unit.level for code, unit in deployment.routing.units.items()}
    rows = rank_units(records, config, now=utc_now(), unit_levels=levels)
    output = _chosen(output, as_json)
    if output is OutputFormat.JSON:
        _print_json([_row_json(row) for row in rows])
        return
    if output is OutputFormat.CSV:
        data = [_row_json(row) for row in rows]
        fields = [field.name for field in dataclasses.fields(RankedUnit)]
        typer.echo(_csv_text(fields, data), nl=False)
        return
    weights = config.weights.as_mapping()
    shown = [name for name in _RATES if weights[name] > 0]
    Console().print(_ranking_table(rows, deployment, shown))


# -- hotspots ---------------------------------------------------------------------------------


def _hotspots_table(found: Sequence[Hotspot], deployment: Deployment) -> Table:
    def name_of(code: str) -> str:
        unit = deployment.routing.units.get(code)
        return unit.name.zh if unit else ""

    table = Table(title=f"{len(found)} hotspot(s)")
    for name in ("day", "place", "name", "level", "category", "count", "usual", "score", "tickets"):
        right = name in {"count", "usual", "score"}
        table.add_column(name, justify="right" if right else "left")
    for hotspot in found:
        shown = ", ".join(hotspot.ticket_ids[:3]) + (" ..." if len(hotspot.ticket_ids) > 3 else "")
        table.add_row(
            hotspot.day.isoformat(), hotspot.place, Text(name_of(hotspot.place)), hotspot.level,
            hotspot.category, str(hotspot.count), f"{hotspot.baseline:.1f}",
            f"{hotspot.score:.1f}", shown,
        )  # fmt: skip
    return table


@report_app.command("hotspots")
def hotspots(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help=f"First day to report (YYYY-MM-DD; default: {HOTSPOT_DAYS} days ago)."
        ),
    ] = None,
    alpha: Annotated[
        float,
        typer.Option("--alpha", min=1e-12, max=0.5, help="Largest chance of a usual day."),
    ] = DEFAULT_HOTSPOT_SETTINGS.alpha,
    all_levels: Annotated[
        bool,
        typer.Option("--all-levels", help="Keep a place's hotspot when a place below is hot."),
    ] = False,
    output: FormatOpt = OutputFormat.TABLE,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Unusual rises of tickets by category and place against their own past weeks."""
    deployment = _deployment(ctx)
    tz = deployment.routing.timezone
    today = utc_now().astimezone(tz).date()
    first = _since(since, tz)
    first_day = first.astimezone(tz).date() if first else today - timedelta(days=HOTSPOT_DAYS)
    settings = dataclasses.replace(DEFAULT_HOTSPOT_SETTINGS, alpha=alpha)
    history_start = datetime.combine(
        first_day - timedelta(days=settings.baseline_days), time(), tzinfo=tz
    )
    records = _records(ctx, history_start)
    places = places_from_routing(deployment.routing)
    found = detect_hotspots(records, places, tz=tz, settings=settings, since=first_day)
    if not all_levels:
        found = collapse_nested(found, places)
    _plot(plot, lambda plots, path: plots.plot_hotspots(found, path))
    output = _chosen(output, as_json)
    if output is OutputFormat.JSON:
        _print_json([_row_json(hotspot) for hotspot in found])
    elif output is OutputFormat.CSV:
        fields = [field.name for field in dataclasses.fields(Hotspot)]
        rows = [{**_row_json(h), "ticket_ids": " ".join(h.ticket_ids)} for h in found]
        typer.echo(_csv_text(fields, rows), nl=False)
    else:
        Console().print(_hotspots_table(found, deployment))


app.add_typer(report_app, name="report", help="Reports: service, lines, ranking, hotspots.")
