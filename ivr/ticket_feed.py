"""Every ticket change on MQTT, whichever process made it.

Tickets change in the controller (calls, the overdue scheduler, follow-ups) and in other
processes (`ivr tickets ...` run by supervisors). Only the controller's notifier publishes
(docs/events.md), so it follows the store's audit trail, where every change is one row, and
publishes a ``ticket.changed`` for each new row: no code path that changes a ticket has to
remember to announce it, and none announces it twice.

Audit rows are numbered as they are inserted but become visible when their transaction
commits, so a row numbered below the newest one seen can still appear (another process's
longer transaction). Each poll therefore looks LOOKBACK rows back and skips those already
published.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

import structlog

from ivr.events import EventPublisher
from ivr.spool import is_database_outage
from ivr.tickets.store import AuditChange

log = structlog.get_logger(__name__)

POLL_SECONDS = 1.0
LOOKBACK = 200
BATCH = 500


class AuditFeed(Protocol):
    async def last_audit_entry(self) -> int: ...
    async def changes_after(self, entry: int, limit: int = BATCH) -> list[AuditChange]: ...


def change_event(entry: AuditChange) -> dict[str, object]:
    return {
        "ticket_id": entry.ticket_id,
        "from_status": entry.from_status,
        "to_status": entry.to_status,
        "action": entry.action,
        "actor": entry.actor,
    }


class TicketChangePublisher:
    def __init__(self, store: AuditFeed, notifier: EventPublisher) -> None:
        self.store = store
        self.notifier = notifier
        self.newest = 0
        #: Rows up to this one are not this controller's to announce.
        self.floor = 0
        self._published: deque[int] = deque(maxlen=LOOKBACK * 4)
        self._published_set: set[int] = set()

    async def start_from_now(self) -> None:
        """Changes made before the controller started were announced by its predecessor
        (or by nobody, with MQTT off); they are not sent again."""
        self.newest = self.floor = await self.store.last_audit_entry()

    async def publish_new(self) -> int:
        """Publish the rows not published yet; returns how many."""
        sent = 0
        while True:
            rows = await self.store.changes_after(max(0, self.newest - LOOKBACK), BATCH)
            fresh = [
                row
                for row in rows
                if row.entry > self.floor and row.entry not in self._published_set
            ]
            for row in fresh:
                self.notifier.publish("ticket.changed", change_event(row))
                self._remember(row.entry)
                sent += 1
            if rows:
                self.newest = max(self.newest, rows[-1].entry)
            if len(rows) < BATCH:
                return sent

    def _remember(self, entry: int) -> None:
        if len(self._published) == self._published.maxlen:
            self._published_set.discard(self._published[0])
        self._published.append(entry)
        self._published_set.add(entry)

    async def run(self, poll_seconds: float = POLL_SECONDS) -> None:
        while True:
            try:
                await self.publish_new()
            except Exception as exc:
                if not is_database_outage(exc):
                    log.exception("ticket changes not published; trying again")
            await asyncio.sleep(poll_seconds)
