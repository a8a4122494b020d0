"""PNG plots of the reports (``ivr report ... --plot FILE.png``), drawn with matplotlib's Agg
renderer: figures are made with :class:`~matplotlib.figure.Figure` directly, never pyplot,
so no display or GUI toolkit is ever looked for and the picture is the same on a server.

Labels are unit codes and line numbers, not names: the fonts a server has rarely cover
Chinese, and a plot of empty boxes helps nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ivr.reports.hotspots import Hotspot
from ivr.reports.metrics import LineUsageReport, ServiceMetrics

#: Above this many groups a plot gets unreadable; the rest are left out (and said so).
MAX_SERIES = 12
_DPI = 100


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100 * value


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=_DPI)


def _legend(axes: Axes) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small", loc="best")


def plot_service(
    rows: Sequence[ServiceMetrics], path: Path, *, by: str, answer_within: float
) -> None:
    """Calls and rates per group; over time (one line per group) when split by period."""
    figure = Figure(figsize=(11, 7))
    calls_axes, rates_axes = figure.subplots(2, 1)
    periods = sorted({row.period for row in rows})
    groups = sorted({row.group for row in rows})[:MAX_SERIES]
    if periods != [""]:
        for group in groups:
            mine = {row.period: row for row in rows if row.group == group}
            calls_axes.plot(periods, [mine[p].offered if p in mine else 0 for p in periods],
                            marker="o", label=f"{group} offered")  # fmt: skip
            rates_axes.plot(periods, [_percent(mine[p].service_level) if p in mine else
                                      float("nan") for p in periods],
                            marker="o", label=f"{group}")  # fmt: skip
        calls_axes.set_ylabel("calls offered")
        rates_axes.set_ylabel(f"service level, % within {answer_within:g} s")
        for axes in (calls_axes, rates_axes):
            axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    else:
        shown = [row for row in rows if row.group in groups]
        positions = range(len(shown))
        width = 0.27
        for offset, (name, values) in enumerate(
            (
                ("offered", [row.offered for row in shown]),
                ("answered", [row.answered for row in shown]),
                ("abandoned", [row.abandoned for row in shown]),
            )
        ):
            calls_axes.bar([p + (offset - 1) * width for p in positions], values, width,
                           label=name)  # fmt: skip
        for offset, (name, rates) in enumerate(
            (
                (f"service level ({answer_within:g} s)", [row.service_level for row in shown]),
                ("on time", [row.on_time_rate for row in shown]),
                ("satisfied", [row.satisfaction_rate for row in shown]),
            )
        ):
            rates_axes.bar([p + (offset - 1) * width for p in positions],
                           [_percent(rate) for rate in rates], width, label=name)  # fmt: skip
        for axes in (calls_axes, rates_axes):
            axes.set_xticks(list(positions), [row.group for row in shown], rotation=45,
                            ha="right", fontsize="small")  # fmt: skip
        calls_axes.set_ylabel("calls")
        rates_axes.set_ylabel("%")
    rates_axes.set_ylim(0, 105)
    title = f"Service by {by}" if by != "all" else "Service"
    if len({row.group for row in rows}) > MAX_SERIES:
        title += f" (first {MAX_SERIES} groups)"
    calls_axes.set_title(title)
    _legend(calls_axes)
    _legend(rates_axes)
    _save(figure, path)


def plot_lines(report: LineUsageReport, path: Path) -> None:
    """Calls per month per line, busiest lines first, on a log scale: 12345 takes thousands
    where an old line takes a handful, and both must be readable."""
    figure = Figure(figsize=(11, 6))
    axes = figure.subplots()
    busiest = sorted(report.lines, key=lambda usage: -usage.total)[:MAX_SERIES]
    months = list(report.months)
    for usage in busiest:
        counts = [calls for _, calls in usage.monthly]
        axes.plot(months, [count if count > 0 else float("nan") for count in counts],
                  marker="o", label=f"{usage.line} ({usage.total})")  # fmt: skip
    if any(usage.total for usage in busiest):
        axes.set_yscale("log")
    axes.axhline(
        report.thresholds.used, color="grey", linestyle="--", linewidth=0.8,
        label=f"{report.thresholds.used:,} a month",
    )  # fmt: skip
    axes.set_ylabel("calls per month (log)")
    axes.set_title("Calls per month per line" + (f" (busiest {MAX_SERIES})"
                   if len(report.lines) > MAX_SERIES else ""))  # fmt: skip
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    _legend(axes)
    _save(figure, path)


def plot_hotspots(found: Sequence[Hotspot], path: Path) -> None:
    """Each hotspot's count against its usual number, highest score first."""
    figure = Figure(figsize=(11, 6))
    axes = figure.subplots()
    shown = list(found)[:MAX_SERIES]
    labels = [f"{h.day:%m-%d} {h.place}\n{h.category}" for h in shown]
    positions = range(len(shown))
    axes.bar([p - 0.2 for p in positions], [h.count for h in shown], 0.4, label="tickets")
    axes.bar([p + 0.2 for p in positions], [h.baseline for h in shown], 0.4, label="usual")
    axes.set_xticks(list(positions), labels, fontsize="small")
    axes.set_ylabel("tickets that day")
    axes.set_title(f"{len(found)} hotspot(s)")
    _legend(axes)
    _save(figure, path)
