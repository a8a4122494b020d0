"""Overdue tickets are announced and handed up one level, on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.events import RecordingPublisher
from ivr.home import ENGINE_ROOT, Home
from ivr.overdue import escalate_overdue, escalation_target
from ivr.routing import RoutingTables, load_routing
from ivr.tickets import TicketStore

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tables() -> RoutingTables:
    return load_routing(Home(ENGINE_ROOT))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TicketStore]:
    async with TicketStore(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", clock=lambda: T0) as s:
        yield s


def test_escalation_goes_to_the_parent_and_stops_at_the_city(tables: RoutingTables) -> None:
    community = escalation_target(tables, "c-east-1-1")
    assert community is not None and community.code == "s-east-1"
    assert escalation_target(tables, "city") is None
    assert escalation_target(tables, None) is None


async def test_overdue_ticket_is_announced_and_escalated(
    store: TicketStore, tables: RoutingTables
) -> None:
    ticket_id = await store.open_call("call-1", line="12345", caller="1", created_at=T0)
    await store.assign(ticket_id, "c-east-1-1", actor="centre", level="community", now=T0)
    city_ticket = await store.open_call("call-2", line="12345", caller="2", created_at=T0)
    await store.assign(city_ticket, "city", actor="centre", level="city", now=T0)
    notifier = RecordingPublisher()

    assert await escalate_overdue(store, tables, notifier, T0 + timedelta(hours=1)) == []
    later = T0 + timedelta(days=30)
    escalated = await escalate_overdue(store, tables, notifier, later)

    moves = {e.ticket_id: (e.from_unit, e.to_unit) for e in escalated}
    assert moves == {ticket_id: ("c-east-1-1", "s-east-1"), city_ticket: ("city", None)}
    assert (await store.get(ticket_id)).unit == "s-east-1"
    assert notifier.names().count("alarm.raised") == 2
    # The move itself is announced by the feed of ticket changes (ivr.ticket_feed).
    assert notifier.names().count("ticket.changed") == 0
    assert await escalate_overdue(store, tables, notifier, later) == []  # once per deadline
