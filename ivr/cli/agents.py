"""``ivr agents``: who is logged in, and log agents in and out or pause them, over AMI.

Members are static in queues.conf (so the PBX can route on its own); logging out is a
pause with the reason ``logged-out``, which routing and app_queue both treat as absence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ivr.agent_board import LOGGED_OUT_REASON, agent_id_of
from ivr.ami import AmiClient, AmiError, QueueMemberState
from ivr.cli import app, home_of
from ivr.deployment import load_deployment
from ivr.home import Home
from ivr.secrets import AMI_SECRET, AMI_USER, SecretStore

agents_app = typer.Typer(help="Agents: list them, log them in or out, pause them.")
app.add_typer(agents_app, name="agents")
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(home: Home, work: Callable[[AmiClient], Awaitable[T]]) -> T:
    settings = load_deployment(home, check_prompt_files=False).settings

    async def session() -> T:
        client = AmiClient(
            host=settings.pbx.bind,
            port=settings.pbx.ami_port,
            username=AMI_USER,
            secret=SecretStore.for_home(home).get(AMI_SECRET),
        )
        await client.start(wait_s=5)
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(session())
    except AmiError as exc:
        err.print(f"error: the PBX did not answer on AMI: {exc}", markup=False)
        raise typer.Exit(1) from exc


def agent_state(members: list[QueueMemberState]) -> str:
    """One word for an agent from its queue memberships."""
    if not members:
        return "no queue"
    if all(m.paused and m.paused_reason == LOGGED_OUT_REASON for m in members):
        return "logged out"
    if all(m.paused for m in members):
        return "paused (" + (members[0].paused_reason or "break") + ")"
    if all(m.status_name in {"unavailable", "invalid", "unknown"} for m in members):
        return "phone off"
    if any(m.in_call or m.status_name in {"in_use", "busy"} for m in members):
        return "in a call"
    return "available"


@agents_app.command("list")
def list_agents(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Every agent of routing/ with its state in the PBX's queues."""
    home = home_of(ctx)
    routing = load_deployment(home, check_prompt_files=False).routing
    members = _run(home, lambda ami: ami.queue_status())
    by_agent: dict[str, list[QueueMemberState]] = {}
    for member in members:
        by_agent.setdefault(agent_id_of(member.interface), []).append(member)
    rows: list[dict[str, Any]] = []
    for agent in sorted(routing.agents.values(), key=lambda a: a.id):
        mine = by_agent.get(agent.id, [])
        rows.append(
            {
                "agent": agent.id,
                "name": agent.name,
                "unit": agent.unit,
                "state": agent_state(mine),
                "queues": sorted(m.queue for m in mine),
                "calls_taken": max((m.calls_taken for m in mine), default=0),
            }
        )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="Agents")
    for column in ("agent", "name", "unit", "state", "queues", "calls_taken"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(", ".join(v) if isinstance(v, list) else str(v) for v in row.values()))
    console.print(table)


def _pause(ctx: typer.Context, agent: str, paused: bool, reason: str) -> None:
    home = home_of(ctx)
    routing = load_deployment(home, check_prompt_files=False).routing
    if agent not in routing.agents:
        err.print(
            f"error: no agent {agent!r} in routing/ (agents: {', '.join(sorted(routing.agents))})"
        )
        raise typer.Exit(1)
    _run(home, lambda ami: ami.queue_pause(f"PJSIP/{agent}", paused, reason=reason))
    console.print(f"agent {agent}: " + (reason or "paused" if paused else "available"))


@agents_app.command()
def login(ctx: typer.Context, agent: str) -> None:
    """Log an agent in: calls of its queues may ring its phone again."""
    _pause(ctx, agent, False, "")


@agents_app.command()
def logout(ctx: typer.Context, agent: str) -> None:
    """Log an agent out: routing treats it as absent; its queues overflow without it."""
    _pause(ctx, agent, True, LOGGED_OUT_REASON)


@agents_app.command()
def pause(
    ctx: typer.Context,
    agent: str,
    reason: Annotated[str, typer.Option(help="Why (shown to supervisors).")] = "break",
) -> None:
    """Pause an agent (a break, after-call work): no calls ring it meanwhile."""
    _pause(ctx, agent, True, reason)


@agents_app.command()
def unpause(ctx: typer.Context, agent: str) -> None:
    """End an agent's pause."""
    _pause(ctx, agent, False, "")


async def _hand_to_110(ami: AmiClient, agent: str, attended: bool, number: str) -> str:
    channels = await ami.send_list_action({"Action": "CoreShowChannels"})
    rows = [m for m in channels if m.event == "CoreShowChannel"]
    mine = next((m for m in rows if agent_id_of(m.get("channel")) == agent), None)
    if mine is None:
        raise typer.BadParameter(f"agent {agent} is on no call")
    if attended:
        # The agent consults 110 first and stays on until they hang up (Atxfer completes).
        await ami.send_action(
            {
                "Action": "Atxfer",
                "Channel": mine.get("channel"),
                "Exten": number,
                "Context": "from-agents",
            }
        )
        return mine.get("channel")
    caller = next(
        (m for m in rows if m.get("uniqueid") == m.get("linkedid") == mine.get("linkedid")),
        None,
    )
    if caller is None:
        raise typer.BadParameter(f"agent {agent}'s caller is gone")
    await ami.send_action(
        {
            "Action": "Redirect",
            "Channel": caller.get("channel"),
            "Context": "to-110",
            "Exten": "s",
            "Priority": "1",
        }
    )
    return caller.get("channel")


@agents_app.command("transfer-110")
def transfer_110(
    ctx: typer.Context,
    agent: str,
    attended: Annotated[
        bool, typer.Option(help="Consult 110 first, staying on the line (else blind).")
    ] = False,
) -> None:
    """Hand the caller an agent is talking to over to the police line 110."""
    home = home_of(ctx)
    number = load_deployment(home, check_prompt_files=False).routing.emergency_number
    moved = _run(home, lambda ami: _hand_to_110(ami, agent, attended, number))
    console.print(f"{moved} handed to {number} ({'attended' if attended else 'blind'})")
