"""Overdue tickets (限时办结): a scheduler finds them, announces them and escalates each to
the parent of the unit that let the deadline pass (上报), so someone above acts on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from ivr.events import EventPublisher
from ivr.routing import RoutingTables, Unit
from ivr.tickets import TicketError, TicketStore

log = structlog.get_logger(__name__)

ACTOR = "overdue-scheduler"
#: How often the scheduler looks; deadlines are hours or days, a minute late is nothing.
CHECK_SECONDS = 60.0


def escalation_target(tables: RoutingTables, unit: str | None) -> Unit | None:
    """The unit an overdue ticket goes up to: its unit's parent (none above the city)."""
    current = tables.units.get(unit or "")
    if current is None or current.parent is None:
        return None
    return tables.units.get(current.parent)


@dataclass(frozen=True)
class Escalation:
    ticket_id: str
    from_unit: str | None
    to_unit: str | None  #: None when nobody is above (the city's own tickets)


async def escalate_overdue(
    store: TicketStore, tables: RoutingTables, notifier: EventPublisher, now: datetime
) -> list[Escalation]:
    """Flag what passed its deadline, announce it, and hand it up one level."""
    done = []
    for ticket_id in await store.mark_overdue(now):
        ticket = await store.get(ticket_id)
        parent = escalation_target(tables, ticket.unit)
        notifier.publish(
            "alarm.raised",
            {
                "kind": "overdue",
                "message": f"ticket {ticket_id} passed its deadline at {ticket.unit}",
                "details": {
                    "ticket_id": ticket_id,
                    "unit": ticket.unit,
                    "deadline": ticket.deadline.isoformat() if ticket.deadline else None,
                },
            },
        )
        if parent is not None:
            try:
                # Announced with every other change by ivr.ticket_feed.
                await store.dispatch(
                    ticket_id,
                    parent.code,
                    actor=ACTOR,
                    level=parent.level,
                    note="deadline passed: escalated to the parent unit",
                    now=now,
                )
            except TicketError as exc:
                log.warning("overdue ticket not escalated", ticket=ticket_id, reason=str(exc))
                parent = None
        done.append(Escalation(ticket_id, ticket.unit, parent.code if parent else None))
    return done


async def run_scheduler(
    store: TicketStore,
    tables_of: Callable[[], RoutingTables],
    notifier: EventPublisher,
    clock: Callable[[], datetime],
) -> None:
    """Check every minute, for as long as the controller runs."""
    while True:
        try:
            escalated = await escalate_overdue(store, tables_of(), notifier, clock())
            if escalated:
                log.info("overdue tickets escalated", tickets=[e.ticket_id for e in escalated])
        except Exception:
            log.exception("overdue check failed; trying again later")
        await asyncio.sleep(CHECK_SECONDS)
