"""Admin commands: ``ivr validate``, ``ivr schema``, ``ivr simulate``, ``ivr prompts``.

Problems are printed one per line as ``file:line: message`` (files relative to the home),
plain text so that editors and CI can jump to them; tables are for people, ``--json`` for
scripts. Every failure exits with code 1 and no traceback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ivr.cli import app, home_of
from ivr.deployment import (
    Deployment,
    DryRun,
    UnknownLine,
    config_json_schemas,
    dry_run,
    load_deployment,
    schema_text,
    write_schemas,
)
from ivr.home import ENGINE_ROOT, Home
from ivr.menu import (
    Goodbye,
    MenuTree,
    Outcome,
    RouteTo,
    ScriptedChannel,
    TransferTo,
    VoiceMessage,
    build_prompts,
    check_prompts,
    load_menus,
)
from ivr.routing import Location, NobodyAvailable, RouteDecision
from ivr.yamlsource import ConfigError, Problem

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SCHEMA_DIR = ENGINE_ROOT / "schema"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _print_problems(problems: Iterable[Problem]) -> None:
    # Plain echo, not rich: a long message must stay on one line, file:line first.
    for problem in problems:
        typer.echo(str(problem))


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _reject(home: Home, problems: Sequence[Problem], *, as_json: bool = False) -> NoReturn:
    if as_json:
        _print_json({"ok": False, "problems": [asdict(problem) for problem in problems]})
    else:
        _print_problems(problems)
        typer.echo(f"{len(problems)} problem(s) in {home.root}", err=True)
    raise typer.Exit(1)


def _load(home: Home, *, check_prompt_files: bool, as_json: bool = False) -> Deployment:
    try:
        return load_deployment(home, check_prompt_files=check_prompt_files)
    except ConfigError as exc:
        _reject(home, exc.problems, as_json=as_json)


def _load_menus(home: Home) -> MenuTree:
    try:
        return load_menus(home)
    except ConfigError as exc:
        _reject(home, exc.problems)


# -- ivr validate ------------------------------------------------------------------------


def _summary(deployment: Deployment) -> str:
    counts = deployment.counts()
    return (
        f"ok: {counts['units']} units, {counts['agents']} agents, {counts['lines']} lines, "
        f"{counts['menu_nodes']} menu nodes, {counts['prompts']} prompts"
    )


@app.command()
def validate(
    ctx: typer.Context,
    prompt_files: Annotated[
        bool,
        typer.Option(
            "--prompt-files/--no-prompt-files",
            help="Also require every prompt's sound file (recorded or built).",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Check config/, routing/ and dialplans/ together.

    Lists every problem as file:line: message and exits 1 if there is any; otherwise prints
    a one-line summary."""
    deployment = _load(home_of(ctx), check_prompt_files=prompt_files, as_json=as_json)
    if as_json:
        _print_json({"ok": True, "problems": [], "counts": deployment.counts()})
    else:
        typer.echo(_summary(deployment))


# -- ivr schema --------------------------------------------------------------------------


@app.command()
def schema(
    name: Annotated[
        str | None,
        typer.Argument(
            help="dialplan, routing, hotline or deadlines (default: dialplan; with --write: all)."
        ),
    ] = None,
    write: Annotated[
        bool,
        typer.Option("--write", help=f"Write the schema files into {SCHEMA_DIR}."),
    ] = False,
) -> None:
    """JSON Schemas of the YAML files, for editors (yaml-language-server).

    Dialplan files point at theirs with a first line
    # yaml-language-server: $schema=../schema/dialplan.schema.json"""
    schemas = config_json_schemas()
    chosen: list[str] | None = None
    if name is not None:
        file_name = name if name.endswith(".schema.json") else f"{name}.schema.json"
        if file_name not in schemas:
            known = ", ".join(n.removesuffix(".schema.json") for n in schemas)
            _fail(f"unknown schema {name!r} (one of: {known})")
        chosen = [file_name]
    if not write:
        typer.echo(schema_text(schemas[(chosen or ["dialplan.schema.json"])[0]]), nl=False)
        return
    for path, changed in write_schemas(SCHEMA_DIR, chosen).items():
        typer.echo(f"{'wrote' if changed else 'unchanged'} {path}")


# -- ivr simulate ------------------------------------------------------------------------

SIMULATE_HELP = "\n\n".join(
    [
        "Walk the menus of LINE for one call with no PBX, then show where the router "
        "would send it.",
        "Key script (--keys), read left to right, spaces ignored:\n"
        "  0-9 * #   the caller presses that key\n"
        "  -         the caller lets one wait pass without pressing anything (no input)\n"
        "  !         the caller hangs up",
        "A menu takes one key or one '-'; a collect takes keys up to its maximum. When the script "
        "runs out the caller stays silent. Example: --keys '3-1 1' presses 3, waits once, presses "
        "1, then 1.",
        "Every configured agent counts as logged in and free, except those given with --absent.",
    ]
)


def _parse_at(text: str | None, deployment: Deployment) -> datetime:
    zone = deployment.routing.timezone
    if text is None:
        return datetime.now(zone)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO time such as 2025-03-05T10:00", param_hint="--at"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@app.command(help=SIMULATE_HELP)
def simulate(
    ctx: typer.Context,
    line: Annotated[str, typer.Argument(help="The number dialled: 12345 or a legacy line.")],
    caller: Annotated[str, typer.Option("--caller", help="The caller's number.")],
    keys: Annotated[
        str, typer.Option("--keys", help="What the caller does (see above), e.g. '3-1'.")
    ] = "",
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="When the call comes, ISO (default: now); no zone = routing's zone."
        ),
    ] = None,
    did: Annotated[
        str | None, typer.Option("--did", help="The landing number the carrier delivered.")
    ] = None,
    absent: Annotated[
        list[str] | None,
        typer.Option("--absent", help="An agent id not logged in (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    try:
        ScriptedChannel(keys)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--keys") from None
    home = home_of(ctx)
    deployment = _load(home, check_prompt_files=False)
    moment = _parse_at(at, deployment)
    try:
        run = asyncio.run(
            dry_run(
                deployment,
                line=line,
                caller=caller,
                keys=keys,
                at=moment,
                did=did,
                absent=absent or (),
            )
        )
    except UnknownLine as exc:
        _fail(str(exc))
    if as_json:
        _print_json(dry_run_as_json(run))
    else:
        _show_dry_run(run)


def outcome_as_json(outcome: Outcome) -> dict[str, Any]:
    kinds: dict[type, str] = {
        RouteTo: "route",
        TransferTo: "transfer",
        VoiceMessage: "voice_message",
        Goodbye: "goodbye",
    }
    return {"kind": kinds[type(outcome)], **asdict(outcome)}


def location_as_json(location: Location | None) -> dict[str, str] | None:
    return None if location is None else {"unit": location.unit, "method": location.method}


def route_as_json(route: RouteDecision | None) -> dict[str, Any] | None:
    if route is None:
        return None
    if isinstance(route, NobodyAvailable):
        return {"kind": "nobody_available", "reason": route.reason, "tried": list(route.tried)}
    return {"kind": "plan", "rule": route.rule, "hops": [asdict(hop) for hop in route.hops]}


def dry_run_as_json(run: DryRun) -> dict[str, Any]:
    return {
        "line": run.line.number,
        "entry": run.line.entry,
        "caller": run.caller,
        "at": run.at.isoformat(),
        "path": run.menu.path,
        "prompts": run.menu.prompts,
        "events": list(run.events),
        "variables": run.menu.variables,
        "language": run.menu.language,
        "outcome": outcome_as_json(run.menu.outcome),
        "location": location_as_json(run.location),
        "route": route_as_json(run.route),
    }


def _describe_outcome(outcome: Outcome) -> str:
    if isinstance(outcome, RouteTo):
        return (
            f"to a person: category {outcome.category or '(none)'}, "
            f"unit {outcome.unit or '(none)'}, priority {outcome.priority}"
        )
    if isinstance(outcome, TransferTo):
        return f"transfer to {outcome.target}" + (" (emergency)" if outcome.emergency else "")
    if isinstance(outcome, VoiceMessage):
        return f"voice message {outcome.recording} ({outcome.seconds:g}s)"
    return f"goodbye ({outcome.reason})"


def _show_dry_run(run: DryRun) -> None:
    console = Console()
    line = run.line
    console.print(
        Text(
            f"line {line.number} ({line.name.en}) from {run.caller} at {run.at.isoformat()}, "
            f"entry {line.entry}",
            style="bold",
        )
    )
    console.print(Text("path: " + " > ".join(run.menu.path)))
    console.print(Text("call:"))
    for event in run.events:
        console.print(Text(f"  {event}"))
    if run.menu.variables:
        shown = ", ".join(f"{name}={value}" for name, value in run.menu.variables.items())
        console.print(Text(f"variables: {shown}"))
    console.print(Text(f"language: {run.menu.language}"))
    console.print(Text(f"outcome: {_describe_outcome(run.menu.outcome)}", style="bold"))
    if run.location is not None:
        console.print(Text(f"location: {run.location.unit} (by {run.location.method})"))
    if isinstance(run.route, NobodyAvailable):
        console.print(Text(f"route: nobody available: {run.route.reason}", style="red"))
        if run.route.tried:
            console.print(Text(f"  tried: {', '.join(run.route.tried)}"))
    elif run.route is not None:
        table = Table(title=f"route (rule {run.route.rule}): first hop, then overflow")
        for column in ("#", "unit", "level", "queue", "wait s"):
            table.add_column(column)
        for number, hop in enumerate(run.route.hops, start=1):
            table.add_row(str(number), hop.unit, hop.level, hop.queue, str(hop.timeout_seconds))
        console.print(table)


# -- ivr prompts -------------------------------------------------------------------------

prompts_app = typer.Typer(
    name="prompts",
    help="Prompt sound files: synthesize the texts, list what cannot play.",
    no_args_is_help=True,
)
app.add_typer(prompts_app, name="prompts")


@prompts_app.command("build")
def prompts_build(ctx: typer.Context) -> None:
    """Synthesize every text prompt not built yet (espeak-ng, sox) into var/prompts/."""
    home = home_of(ctx)
    report = build_prompts(_load_menus(home), home)
    _print_problems(report.failed)
    typer.echo(
        f"{len(report.built)} built, {len(report.unchanged)} unchanged, {len(report.failed)} failed"
    )
    if report.failed:
        raise typer.Exit(1)


@prompts_app.command("check")
def prompts_check(ctx: typer.Context) -> None:
    """List prompts that cannot play yet (recorded file missing, text not built).

    Exits 1 if there is any."""
    home = home_of(ctx)
    missing = check_prompts(_load_menus(home), home)
    _print_problems(missing)
    if missing:
        typer.echo(f"{len(missing)} prompt(s) missing: run 'ivr prompts build'", err=True)
        raise typer.Exit(1)
    typer.echo("every prompt can play")
