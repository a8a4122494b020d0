"""Running the hotline: ``ivr up`` / ``down`` / ``status`` / ``serve`` / ``call`` / ``agents``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ivr.cli import app, home_of
from ivr.controller import Controller
from ivr.deployment import Deployment, load_deployment
from ivr.home import Home
from ivr.logs import configure_logging
from ivr.pbx.asterisk import ROOT_HOME_MOUNT, PbxError, provision, wait_fully_booted
from ivr.secrets import AMI_SECRET, AMI_USER, SecretStore, agent_secret_name
from ivr.services import clock_starting_at, utc_now
from ivr.settings import database_url
from ivr.sipp.peers import CitizenCall, SippError
from ivr.stack import Pbx, SimulatedPhones, StackError
from ivr.tickets import TicketStore, ticket_as_json
from ivr.yamlsource import ConfigError

AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Pretend the clock reads this ISO time at start, then runs on (demos, tests).",
    ),
]

console = Console()
err = Console(stderr=True)


def _controller_logging() -> None:
    """A running controller logs what it does (INFO); one-shot commands only warnings."""
    configure_logging(json=True, level=os.environ.get("IVR_LOG_LEVEL", "INFO"))


def _up_file(home: Home) -> Path:
    return home.var_dir / "run" / "up.json"


def _load(home: Home) -> Deployment:
    try:
        return load_deployment(home, check_prompt_files=False)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(1) from exc


def _print_welcome(deployment: Deployment, home: Home, phones: bool) -> None:
    pbx = deployment.settings.pbx
    secrets = SecretStore.for_home(home)
    console.print(f"[bold green]12345 hotline is up[/] — SIP on {pbx.bind}:{pbx.sip_port}")
    console.print("Place a call as a citizen:")
    console.print(f"  ivr call 12345 --caller 13800000001 --keys 1   (home {home.root})")
    if phones:
        console.print("Simulated SIP phones answer for every agent and for the 110 centre.")
    table = Table(title="Softphone accounts (register to the SIP address above)")
    for column in ("agent", "name", "unit", "password"):
        table.add_column(column)
    for agent in sorted(deployment.routing.agents.values(), key=lambda a: a.id):
        table.add_row(agent.id, agent.name, agent.unit, secrets.get(agent_secret_name(agent.id)))
    console.print(table)


def _clock(at: str | None, deployment: Deployment) -> Callable[[], datetime]:
    if at is None:
        return utc_now
    try:
        start = datetime.fromisoformat(at)
    except ValueError as exc:
        err.print(f"error: --at {at!r} is not an ISO time (e.g. 2026-11-27T10:00)")
        raise typer.Exit(2) from exc
    if start.tzinfo is None:
        start = start.replace(tzinfo=deployment.routing.timezone)
    return clock_starting_at(start)


async def _run_up(
    home: Home, simulate_agents: bool, ready_file: Path | None, at: str | None
) -> None:
    deployment = _load(home)
    pbx = Pbx(home, deployment)
    phones = SimulatedPhones(home, deployment) if simulate_agents else None
    controller: Controller | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await pbx.start()  # builds the prompts the controller then checks
        controller = Controller(home, pbx_home=pbx.pbx_home, clock=_clock(at, deployment))
        await controller.start()
        if phones is not None:
            await phones.start()
        _print_welcome(deployment, home, phones is not None)
        if ready_file is not None:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
        await stop.wait()
    finally:
        console.print("stopping…")
        if phones is not None:
            await phones.stop()
        if controller is not None:
            await controller.close()
        pbx.stop()
        if ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                ready_file.unlink()


@app.command()
def up(
    ctx: typer.Context,
    detach: Annotated[
        bool, typer.Option(help="Return once the PBX and controller are ready.")
    ] = False,
    simulate_agents: Annotated[
        bool, typer.Option(help="Start a SIP phone for every agent and the 110 centre.")
    ] = False,
    at: AtOption = None,
) -> None:
    """Start Asterisk and the controller (Ctrl-C stops both)."""
    home = home_of(ctx)
    ready = _up_file(home)
    if detach:
        _detach(home, simulate_agents, ready, at)
        return
    _controller_logging()
    try:
        asyncio.run(_run_up(home, simulate_agents, ready, at))
    except (PbxError, StackError, SippError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from exc


def _detach(home: Home, simulate_agents: bool, ready: Path, at: str | None) -> None:
    with contextlib.suppress(FileNotFoundError):
        ready.unlink()
    log_file = home.var_dir / "log" / "up.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ivr", "--home", str(home.root), "up"]
    if simulate_agents:
        command.append("--simulate-agents")
    if at is not None:
        command += ["--at", at]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if ready.exists():
            console.print(f"hotline up (pid {process.pid}); logs in {home.display(log_file)}")
            return
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace").splitlines()[-20:]
            err.print("\n".join(tail), markup=False)
            raise typer.Exit(1)
        time.sleep(0.2)
    err.print("the hotline did not come up in time; see " + str(log_file))
    raise typer.Exit(1)


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop what ``ivr up --detach`` started."""
    home = home_of(ctx)
    ready = _up_file(home)
    if not ready.exists():
        console.print("nothing running")
        return
    pid = int(json.loads(ready.read_text())["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ready.exists():
        time.sleep(0.2)
    console.print("stopped")


async def _status(home: Home) -> dict[str, Any]:
    settings = _load(home).settings
    secrets = SecretStore.for_home(home)
    report: dict[str, Any] = {}
    try:
        await wait_fully_booted(
            settings.pbx.bind, settings.pbx.ami_port, AMI_USER, secrets.get(AMI_SECRET), 2.0
        )
        report["pbx"] = "up"
    except PbxError as exc:
        report["pbx"] = f"down ({exc})"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(settings.controller.agi_host, settings.controller.agi_port), 2
        )
        writer.close()
        report["controller"] = "up"
    except (OSError, TimeoutError):
        report["controller"] = "down"
    return report


@app.command()
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Health of the PBX and the controller (exit 1 unless both are up)."""
    report = asyncio.run(_status(home_of(ctx)))
    if as_json:
        console.print_json(json.dumps(report))
    else:
        for part, state in report.items():
            console.print(f"{part}: {state}", markup=False)
    if any(state != "up" for state in report.values()):
        raise typer.Exit(1)


@app.command()
def serve(
    ctx: typer.Context,
    pbx_home: Annotated[
        str | None,
        typer.Option(help="How Asterisk sees the home (default: config, else the PBX's mode)."),
    ] = None,
    at: AtOption = None,
) -> None:
    """The controller alone, for an Asterisk run by someone else (or by ``ivr up``)."""
    home = home_of(ctx)
    _controller_logging()
    deployment = _load(home)
    chosen = pbx_home or deployment.settings.pbx.home_in_pbx
    if not chosen:
        chosen = ROOT_HOME_MOUNT if provision().mode == "root" else str(home.root)

    async def run() -> None:
        controller = Controller(home, pbx_home=chosen, clock=_clock(at, deployment))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await controller.start()
        try:
            await stop.wait()
        finally:
            await controller.close()

    asyncio.run(run())


async def _wait_for_ticket(home: Home, call_id: str, timeout: float) -> dict[str, Any] | None:
    """The ticket of a call, once the call's end is on it (or whatever is there by then)."""
    async with TicketStore(database_url(home)) as store:
        deadline = time.monotonic() + timeout
        ticket = None
        while time.monotonic() < deadline:
            ticket = await store.by_sip_call_id(call_id)
            if ticket is not None and ticket.ended_at is not None:
                break
            await asyncio.sleep(0.2)
        return ticket_as_json(ticket) if ticket is not None else None


@app.command()
def call(
    ctx: typer.Context,
    line: Annotated[str, typer.Argument(help="The number to dial: 12345 or a legacy line.")],
    caller: Annotated[str, typer.Option(help="The citizen's number.")] = "13800000000",
    keys: Annotated[
        str, typer.Option(help="Keys to press after the greeting; '-' = let a timeout pass.")
    ] = "",
    talk: Annotated[
        float,
        typer.Option(
            help="Most seconds to stay once a person's phone rings (simulated agents hang up "
            "after 3 s of talk)."
        ),
    ] = 30.0,
    caller_name: Annotated[str, typer.Option(help="Caller ID name.")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Place a real SIP call into the running PBX as a citizen and print its ticket."""
    home = home_of(ctx)
    settings = _load(home).settings
    citizen = CitizenCall(
        pbx_host=settings.pbx.bind,
        pbx_port=settings.pbx.sip_port,
        line=line,
        caller=caller,
        keys=keys,
        talk_seconds=talk,
        caller_name=caller_name,
        work_dir=home.var_dir / "calls",
    )
    try:
        code = asyncio.run(citizen.run())
    except SippError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from exc
    ticket = asyncio.run(_wait_for_ticket(home, citizen.call_id, timeout=10))
    if ticket is None:
        err.print(f"no ticket for call {citizen.call_id} (SIPp exit {code})")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(ticket, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"ticket {ticket['id']}", show_header=False)
        for name, value in ticket.items():
            table.add_row(name, "" if value is None else str(value))
        console.print(table)
    if code != 0:
        raise typer.Exit(1)
