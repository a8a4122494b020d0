"""The one edge of the reports that reads: ticket records out of the ticket store."""

from __future__ import annotations

from datetime import datetime

from ivr.reports.records import TicketRecord, record_of
from ivr.tickets.store import TicketStore


async def load_records(
    store: TicketStore, *, since: datetime | None = None, with_history: bool = True
) -> list[TicketRecord]:
    """The tickets opened since ``since`` (all when None) as records, oldest first.

    With ``with_history``, the audit trail of each ticket that ever had a deadline (only those
    were assigned, so only those can have been resolved by a unit or sent back) gives the
    resolution time and the returns. That is one query per such ticket: fine for a month of a
    city's tickets, slow for years of them; a bulk audit read in the store would remove it."""
    tickets = await store.list(since=since, limit=None)
    records: list[TicketRecord] = []
    for ticket in reversed(tickets):
        history = await store.history(ticket.id) if with_history and ticket.deadline else []
        records.append(record_of(ticket, history))
    return records
