"""``ivr tickets ...``: list, show and work on tickets. Rich tables for people, ``--json`` for
scripts. The main CLI puts the deployment's Home in ``ctx.obj``; every error is one line on
stderr with exit code 1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ivr.home import Home
from ivr.outbound.plan import AT_ONCE, owed_calls_of
from ivr.settings import database_url, load_settings
from ivr.tickets.deadlines import load_deadlines
from ivr.tickets.errors import TicketError
from ivr.tickets.lifecycle import is_overdue
from ivr.tickets.model import AuditEntry, Ticket, audit_as_json, ticket_as_json
from ivr.tickets.store import TicketStore, utc_now
from ivr.yamlsource import ConfigError

T = TypeVar("T")

tickets_app = typer.Typer(
    name="tickets",
    help="Tickets of the hotline: list, show, assign, dispatch, return, resolve, merge...",
    no_args_is_help=True,
)

TicketArg = Annotated[str, typer.Argument(help="Ticket id (T20261127-000042) or number (42).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ActorOpt = Annotated[
    str, typer.Option("--actor", envvar="IVR_ACTOR", help="Who does this, for the audit trail.")
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="A remark for the audit trail.")]
LevelOpt = Annotated[
    str | None, typer.Option("--level", help="The unit's level: city, district, street...")
]
DEFAULT_ACTOR = "cli"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _home(ctx: typer.Context) -> Home:
    # Run on its own (not under the main CLI), the Home comes from IVR_HOME or the cwd.
    found = ctx.find_object(Home)
    return found if found is not None else Home.resolve()


def _with_store(ctx: typer.Context, work: Callable[[TicketStore], Awaitable[T]]) -> T:
    home = _home(ctx)
    url = ""
    try:
        url = database_url(home)
        store = TicketStore(url, deadlines=load_deadlines(home))

        async def main() -> T:
            async with store:
                return await work(store)

        return asyncio.run(main())
    except (TicketError, ConfigError) as exc:
        _fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        shown = make_url(url).render_as_string(hide_password=True) if url else "?"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _fail(f"tickets database {shown}: {reason}")


#: Every character a terminal acts on (C0 controls, DEL, C1 controls such as CSI) as a
#: visible escape: caller names come from SIP and may carry terminal escape sequences.
_CONTROL_ESCAPES = {
    code: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(chr(code), f"\\x{code:02x}")
    for code in [*range(0x20), *range(0x7F, 0xA0)]
}
#: JSON escapes C0 itself (ensure_ascii=False still does); DEL and C1 it leaves raw.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _printable(text: str) -> str:
    return text.translate(_CONTROL_ESCAPES)


def _cells(*values: str | None) -> list[Text]:
    """Table cells as plain text: a caller name or note with [brackets] is not rich markup,
    and its control characters are shown escaped, never sent to the terminal."""
    return [Text(_printable(value or "")) for value in values]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2).translate(_JSON_ESCAPES))


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or time such as 2026-11-27") from None
    return moment if moment.tzinfo else moment.astimezone()


@tickets_app.command("list")
def list_tickets(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only these statuses (repeatable).")
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Only tickets of this unit.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only tickets past their deadline.")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only calls since this date or time (ISO).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Tickets, newest first."""
    since_at = _parse_since(since)
    now = utc_now()
    tickets = _with_store(
        ctx,
        lambda store: store.list(
            status=status or None,
            unit=unit,
            overdue=True if overdue else None,
            since=since_at,
            limit=limit,
            now=now,
        ),
    )
    if as_json:
        _print_json([ticket_as_json(ticket) for ticket in tickets])
        return
    table = Table(title=f"{len(tickets)} ticket(s)")
    for column in ("id", "status", "created", "line", "caller", "category", "unit", "deadline",
                   "follow-up / callback"):
        table.add_column(column, no_wrap=column in {"id", "created", "deadline"})
    for ticket in tickets:
        late = is_overdue(ticket, now)
        table.add_row(
            *_cells(
                ticket.id,
                ticket.status,
                _when(ticket.created_at),
                ticket.line,
                ticket.caller,
                ticket.category,
                ticket.unit,
            ),
            Text(_when(ticket.deadline) + (" overdue" if late else ""), "red" if late else ""),
            Text(_outbound_summary(ticket)),
        )
    Console().print(table)


def _outbound_summary(ticket: Ticket) -> str:
    """The follow-up's result (or tries) and the callback's state, in a few words."""
    parts = []
    if ticket.rating:
        parts.append(f"rated {ticket.rating}")
    elif ticket.followup_attempts:
        parts.append(f"follow-up tried {ticket.followup_attempts}x")
    if ticket.callback_done_at is not None:
        parts.append(f"called back {_when(ticket.callback_done_at)}")
    elif ticket.callback_requested:
        tried = f", tried {ticket.callback_attempts}x" if ticket.callback_attempts else ""
        parts.append(f"callback owed{tried}")
    return "; ".join(parts)


@tickets_app.command("calls")
def owed_calls(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Follow-up calls (回访) and callbacks (回拨) still owed: tries so far and when the next
    is due (within the calling hours of config/hotline.yaml)."""
    settings = load_settings(_home(ctx))
    tickets = _with_store(ctx, lambda store: store.outbound_candidates(limit=None))
    rows = owed_calls_of(tickets, settings)
    if as_json:
        _print_json([row.as_json() for row in rows])
        return
    table = Table(title=f"{len(rows)} call(s) owed")
    for column in ("ticket", "call", "caller", "unit", "tries", "last try", "next"):
        table.add_column(column, no_wrap=column in {"ticket", "last try", "next"})
    for row in rows:
        table.add_row(
            *_cells(
                row.ticket_id,
                row.kind.value,
                row.caller,
                row.unit,
                str(row.attempts),
                _when(row.last_at),
                "given up" if row.next_at is None else "now" if row.next_at == AT_ONCE
                else _when(row.next_at),
            )
        )
    Console().print(table)


def _show_ticket(ticket: Ticket) -> None:
    table = Table(title=f"ticket {ticket.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name, value in ticket_as_json(ticket).items():
        if value is None or value == [] or value == {}:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(*_cells(name, text))
    Console().print(table)


@tickets_app.command("show")
def show(ctx: typer.Context, ticket_id: TicketArg, as_json: JsonOpt = False) -> None:
    """One ticket with everything known about it."""
    ticket = _with_store(ctx, lambda store: store.get(ticket_id))
    if as_json:
        _print_json(ticket_as_json(ticket))
    else:
        _show_ticket(ticket)


@tickets_app.command("history")
def history(ctx: typer.Context, ticket_id: TicketArg, as_json: JsonOpt = False) -> None:
    """What was done to a ticket, by whom and when."""
    entries: list[AuditEntry] = _with_store(ctx, lambda store: store.history(ticket_id))
    if as_json:
        _print_json([audit_as_json(entry) for entry in entries])
        return
    table = Table(title=f"history of {ticket_id}")
    for column in ("at", "actor", "action", "from", "to", "note"):
        table.add_column(column, no_wrap=column == "at")
    for entry in entries:
        table.add_row(
            *_cells(
                _when(entry.at),
                entry.actor,
                entry.action,
                entry.from_status,
                entry.to_status,
                entry.note,
            )
        )
    Console().print(table)


def _report(ticket: Ticket, as_json: bool) -> None:
    if as_json:
        _print_json(ticket_as_json(ticket))
        return
    parts = [f"{ticket.id}: {ticket.status}"]
    if ticket.unit:
        parts.append(f"unit {ticket.unit}")
    if ticket.deadline:
        parts.append(f"deadline {_when(ticket.deadline)}")
    if ticket.parent_id:
        parts.append(f"merged into {ticket.parent_id}")
    typer.echo(", ".join(parts))


@tickets_app.command("assign")
def assign(
    ctx: typer.Context,
    ticket_id: TicketArg,
    unit: Annotated[str, typer.Argument(help="The responsible unit.")],
    level: LevelOpt = None,
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Give a ticket to a unit (交办); its deadline starts now."""
    ticket = _with_store(
        ctx, lambda store: store.assign(ticket_id, unit, actor=actor, level=level, note=note)
    )
    _report(ticket, as_json)


@tickets_app.command("dispatch")
def dispatch(
    ctx: typer.Context,
    ticket_id: TicketArg,
    unit: Annotated[str, typer.Argument(help="The unit a level up or down.")],
    level: LevelOpt = None,
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Hand a ticket up or down a level (上报/派发); the deadline is kept."""
    ticket = _with_store(
        ctx, lambda store: store.dispatch(ticket_id, unit, actor=actor, level=level, note=note)
    )
    _report(ticket, as_json)


@tickets_app.command("return")
def return_ticket(
    ctx: typer.Context,
    ticket_id: TicketArg,
    reason: Annotated[str, typer.Argument(help="Why the ticket is not this unit's.")],
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Send a misrouted ticket back to the centre for reassignment (退单)."""
    ticket = _with_store(ctx, lambda store: store.return_(ticket_id, reason, actor=actor))
    _report(ticket, as_json)


@tickets_app.command("start")
def start(
    ctx: typer.Context,
    ticket_id: TicketArg,
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """The unit begins working on the ticket."""
    ticket = _with_store(ctx, lambda store: store.start_work(ticket_id, actor=actor, note=note))
    _report(ticket, as_json)


@tickets_app.command("resolve")
def resolve(
    ctx: typer.Context,
    ticket_id: TicketArg,
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """The matter is dealt with (办结)."""
    ticket = _with_store(ctx, lambda store: store.resolve(ticket_id, actor=actor, note=note))
    _report(ticket, as_json)


@tickets_app.command("follow-up")
def follow_up(
    ctx: typer.Context,
    ticket_id: TicketArg,
    rating: Annotated[
        str, typer.Argument(help="satisfied, basically_satisfied or dissatisfied (满意...).")
    ],
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Record the follow-up call (回访); dissatisfied reopens the ticket at its unit."""
    ticket = _with_store(
        ctx, lambda store: store.follow_up(ticket_id, rating, actor=actor, note=note)
    )
    _report(ticket, as_json)


@tickets_app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    ticket_id: TicketArg,
    score: Annotated[
        int | None, typer.Option("--score", min=0, max=100, help="0-100.")
    ] = None,
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate how the unit handled the ticket (考评)."""
    ticket = _with_store(
        ctx, lambda store: store.evaluate(ticket_id, actor=actor, score=score, note=note)
    )
    _report(ticket, as_json)


@tickets_app.command("close")
def close(
    ctx: typer.Context,
    ticket_id: TicketArg,
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Close an evaluated ticket, or a call that carried no matter."""
    ticket = _with_store(ctx, lambda store: store.close_ticket(ticket_id, actor=actor, note=note))
    _report(ticket, as_json)


@tickets_app.command("merge")
def merge(
    ctx: typer.Context,
    duplicate_id: Annotated[str, typer.Argument(help="The duplicate ticket.")],
    into_id: Annotated[str, typer.Argument(help="The original it joins.")],
    note: NoteOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Join a duplicate complaint to its original (合并)."""
    ticket = _with_store(
        ctx, lambda store: store.merge(duplicate_id, into_id, actor=actor, note=note)
    )
    _report(ticket, as_json)


@tickets_app.command("note")
def note(
    ctx: typer.Context,
    ticket_id: TicketArg,
    text: Annotated[str, typer.Argument(help="The remark.")],
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
) -> None:
    """Add a remark to a ticket's history; the status stays."""
    ticket = _with_store(ctx, lambda store: store.note(ticket_id, text, actor=actor))
    _report(ticket, as_json)


@tickets_app.command("mark-overdue")
def mark_overdue(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Flag every ticket whose deadline has passed (for a periodic job)."""
    flagged = _with_store(ctx, lambda store: store.mark_overdue())
    if as_json:
        _print_json(flagged)
    else:
        typer.echo(f"{len(flagged)} ticket(s) newly overdue" + (": " if flagged else "")
                   + ", ".join(flagged))
