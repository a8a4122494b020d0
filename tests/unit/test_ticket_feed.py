"""The feed of ticket changes: every audit row once on MQTT, whichever process wrote it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.events import RecordingPublisher
from ivr.ticket_feed import LOOKBACK, TicketChangePublisher
from ivr.tickets.store import AuditChange, TicketStore

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TicketStore]:
    async with TicketStore(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", clock=lambda: NOW) as s:
        yield s


async def test_changes_after_the_start_are_published_once_in_order(store: TicketStore) -> None:
    before = await store.open_call("1.1", line="12345", caller="13800000001")
    notifier = RecordingPublisher()
    feed = TicketChangePublisher(store, notifier)
    await feed.start_from_now()

    ticket = await store.open_call("1.2", line="12345", caller="13800000002")
    await store.assign(ticket, "d-east", actor="1009")
    await store.note(before, "called back", actor="1001")
    assert await feed.publish_new() == 3
    assert await feed.publish_new() == 0

    events = [(e.event, e.data) for e in notifier.events if e.event == "ticket.changed"]
    assert [(d["ticket_id"], d["action"], d["to_status"]) for _, d in events] == [
        (ticket, "accept", "accepted"),
        (ticket, "assign", "assigned"),
        (before, "note", "accepted"),
    ]
    assert events[1][1]["actor"] == "1009" and events[1][1]["from_status"] == "accepted"


class LateCommits:
    """An audit trail where row 5 becomes visible only after row 6 was read, as a longer
    transaction of another process makes it."""

    def __init__(self) -> None:
        self.rows = [self._row(n) for n in (1, 2, 3, 4, 6)]

    @staticmethod
    def _row(n: int) -> AuditChange:
        return AuditChange(entry=n, ticket_id=f"T{n}", actor="x", action="note",
                           from_status="accepted", to_status="accepted")

    async def last_audit_entry(self) -> int:
        return 2

    async def changes_after(self, entry: int, limit: int = 500) -> list[AuditChange]:
        return sorted((r for r in self.rows if r.entry > entry), key=lambda r: r.entry)[:limit]


async def test_a_row_committed_late_is_still_published() -> None:
    trail = LateCommits()
    notifier = RecordingPublisher()
    feed = TicketChangePublisher(trail, notifier)  # type: ignore[arg-type]
    await feed.start_from_now()
    await feed.publish_new()
    trail.rows.append(trail._row(5))
    await feed.publish_new()
    assert [e.data["ticket_id"] for e in notifier.events] == ["T3", "T4", "T6", "T5"]
    assert LOOKBACK >= 100
