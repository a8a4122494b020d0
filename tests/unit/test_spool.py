"""The durable ticket spool: the journal on disk, its replay, and the writer in front of a real
SQLite ticket store that goes away and comes back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc

from ivr.home import Home
from ivr.spool import (
    APPEND_PATH,
    APPEND_ROUTE_HOP,
    OPEN_CALL,
    UPDATE_CALL,
    SpoolingTicketWriter,
    TicketSpool,
    apply_record,
    default_spool_path,
    is_database_outage,
)
from ivr.tickets.errors import InvalidTicketUpdate, UnknownTicket
from ivr.tickets.store import StoreNotStarted, TicketStore

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ANSWERED = datetime(2026, 11, 27, 8, 1, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "db" / "tickets.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[TicketStore]:
    async with TicketStore(f"sqlite+aiosqlite:///{db_path}", clock=lambda: NOW) as opened:
        yield opened


@pytest.fixture
def spool(tmp_path: Path) -> TicketSpool:
    return TicketSpool(default_spool_path(Home(tmp_path)), clock=lambda: NOW)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- the journal ----------------------------------------------------------------------------


def test_default_spool_path(tmp_path: Path) -> None:
    assert default_spool_path(Home(tmp_path)) == tmp_path / "var/spool/tickets.jsonl"
    assert default_spool_path(Home(tmp_path), "agi-2").name == "agi-2.jsonl"


def test_append_writes_a_json_line_that_reads_back(spool: TicketSpool) -> None:
    assert not spool.has_pending()
    first = spool.append(OPEN_CALL, "1.1", {"line": "12345", "caller_name": "张三",
                                            "created_at": NOW})  # fmt: skip
    second = spool.append(UPDATE_CALL, "1.1", {"answered_at": ANSWERED, "agent": "1001"})
    assert spool.has_pending()
    records = spool.records()
    assert [r.id for r in records] == [first.id, second.id]
    assert records[0].fields == {"line": "12345", "caller_name": "张三", "created_at": NOW}
    assert records[1].fields["answered_at"] == ANSWERED
    raw = _lines(spool.path)
    assert raw[0]["op"] == "open_call" and raw[0]["linkedid"] == "1.1"
    assert raw[0]["fields"]["created_at"] == "2026-11-27T08:00:00+00:00"
    assert "张三" in spool.path.read_text()


def test_append_refuses_what_it_could_not_replay(spool: TicketSpool) -> None:
    with pytest.raises(ValueError, match="unknown spool op"):
        spool.append("delete_everything", "1.1", {})
    with pytest.raises(InvalidTicketUpdate, match="linkedid"):
        spool.append(UPDATE_CALL, "", {})
    with pytest.raises(TypeError, match="cannot be spooled"):
        spool.append(UPDATE_CALL, "1.1", {"variables": {"x": object()}})
    with pytest.raises(InvalidTicketUpdate, match="naive"):
        spool.append(UPDATE_CALL, "1.1", {"ended_at": datetime(2026, 11, 27)})
    assert not spool.has_pending()


async def test_drain_replays_in_order_and_empties_the_spool(
    spool: TicketSpool, store: TicketStore
) -> None:
    spool.append(OPEN_CALL, "2.1", {"line": "12345", "created_at": NOW})
    spool.append(APPEND_PATH, "2.1", {"nodes": ["welcome", "main"]})
    spool.append(APPEND_ROUTE_HOP, "2.1", {"unit": "east", "level": "district",
                                           "queue": "q-east", "outcome": "answered"})  # fmt: skip
    spool.append(UPDATE_CALL, "2.1", {"answered_at": ANSWERED, "agent": "1001"})
    assert await spool.drain(store) == 4
    assert not spool.has_pending()
    ticket = await store.by_linkedid("2.1")
    assert ticket is not None
    assert ticket.created_at == NOW
    assert ticket.ivr_path == ["welcome", "main"]
    assert ticket.route_hops == [
        {"unit": "east", "level": "district", "queue": "q-east", "outcome": "answered"}
    ]
    assert ticket.agent == "1001" and ticket.answered_at == ANSWERED
    assert ticket.wait_seconds == 60
    assert await spool.drain(store) == 0


async def test_a_torn_tail_is_set_aside_and_later_records_survive(
    spool: TicketSpool, store: TicketStore
) -> None:
    spool.append(OPEN_CALL, "3.1", {"created_at": NOW})
    with spool.path.open("a") as file:
        file.write('{"id": "dead", "op": "update_ca')  # the writer died here
    spool.append(UPDATE_CALL, "3.1", {"agent": "1002"})
    assert len(spool.records()) == 2
    assert await spool.drain(store) == 2
    ticket = await store.by_linkedid("3.1")
    assert ticket is not None and ticket.agent == "1002"
    [rejected] = _lines(spool.rejected_path)
    assert rejected["line"] == '{"id": "dead", "op": "update_ca'
    assert "unreadable" in rejected["reason"]
    assert not spool.has_pending()


async def test_a_record_the_store_refuses_goes_to_rejected(
    spool: TicketSpool, store: TicketStore
) -> None:
    spool.append(UPDATE_CALL, "nobody", {"agent": "1001"})
    spool.append(OPEN_CALL, "4.1", {"created_at": NOW})
    assert await spool.drain(store) == 1
    [rejected] = _lines(spool.rejected_path)
    assert rejected["reason"].startswith("UnknownTicket")
    assert json.loads(rejected["line"])["linkedid"] == "nobody"
    assert not spool.has_pending()


class FlakyStore:
    """A store that is out for the calls in ``down`` and records what it was asked."""

    def __init__(self, down: set[str]) -> None:
        self.down = down
        self.applied: list[tuple[str, str, dict[str, Any]]] = []
        self.during: list[Any] = []

    async def _do(self, op: str, linkedid: str, fields: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        for hook in self.during:
            hook()
        if linkedid in self.down:
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("unable to open"))
        self.applied.append((op, linkedid, fields))
        return f"T-{linkedid}"

    async def open_call(self, linkedid: str, **fields: Any) -> str:
        return await self._do(OPEN_CALL, linkedid, fields)

    async def update_call(self, linkedid: str, **fields: Any) -> str:
        return await self._do(UPDATE_CALL, linkedid, fields)

    async def append_path(self, linkedid: str, node_ids: Sequence[str]) -> str:
        return await self._do(APPEND_PATH, linkedid, {"nodes": list(node_ids)})

    async def append_route_hop(self, linkedid: str, **hop: Any) -> str:
        return await self._do(APPEND_ROUTE_HOP, linkedid, hop)


async def test_an_outage_stops_only_its_call_and_keeps_its_order(spool: TicketSpool) -> None:
    for linkedid in ("a", "b", "a", "b", "a"):
        spool.append(UPDATE_CALL, linkedid, {"agent": f"{linkedid}{len(spool.records())}"})
    flaky = FlakyStore(down={"b"})
    assert await spool.drain(flaky) == 3
    assert [(linkedid, f["agent"]) for _, linkedid, f in flaky.applied] == [
        ("a", "a0"), ("a", "a2"), ("a", "a4"),
    ]  # fmt: skip
    assert [(r.linkedid, r.fields["agent"]) for r in spool.records()] == [("b", "b1"), ("b", "b3")]
    flaky.down.clear()
    assert await spool.drain(flaky) == 2
    assert [f["agent"] for _, _, f in flaky.applied[3:]] == ["b1", "b3"]


async def test_records_appended_during_a_drain_stay(spool: TicketSpool) -> None:
    spool.append(UPDATE_CALL, "d.1", {"agent": "1"})
    flaky = FlakyStore(down=set())
    appended: list[str] = []

    def append_once() -> None:
        if not appended:
            appended.append(spool.append(UPDATE_CALL, "d.2", {"agent": "2"}).id)

    flaky.during.append(append_once)
    # The drain goes on while records arrive, so the late one is applied too; nothing lost.
    assert await spool.drain(flaky) == 2
    assert [linkedid for _, linkedid, _ in flaky.applied] == ["d.1", "d.2"]
    assert not spool.has_pending()


async def test_only_one_drain_at_a_time(spool: TicketSpool) -> None:
    spool.append(UPDATE_CALL, "e.1", {"agent": "1"})
    flaky = FlakyStore(down=set())
    first, second = await asyncio.gather(spool.drain(flaky), spool.drain(flaky))
    assert sorted([first, second]) == [0, 1]
    assert len(flaky.applied) == 1


async def test_another_process_draining_makes_this_drain_wait(spool: TicketSpool) -> None:
    import fcntl
    import os

    spool.append(UPDATE_CALL, "f.1", {"agent": "1"})
    spool.drain_lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(spool.drain_lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert await spool.drain(FlakyStore(down=set())) == 0
    finally:
        os.close(fd)
    assert await spool.drain(FlakyStore(down=set())) == 1


async def test_replaying_again_after_a_crash_mid_drain_changes_nothing(
    spool: TicketSpool, store: TicketStore
) -> None:
    """The process died after the store applied the records but before they left the spool:
    the next drain applies them all again, and the ticket is the same."""
    writer = SpoolingTicketWriter(store, spool, clock=lambda: NOW)
    spool.append(OPEN_CALL, "g.1", {"line": "12345", "created_at": NOW})
    # What the writer spools for appends: whole lists, so replaying them is harmless.
    spool.append(UPDATE_CALL, "g.1", {"ivr_path": ["welcome"]})
    spool.append(UPDATE_CALL, "g.1", {"ivr_path": ["welcome", "main"]})
    hop = {"unit": "east", "level": None, "queue": None, "outcome": None}
    spool.append(UPDATE_CALL, "g.1", {"route_hops": [hop]})
    spool.append(UPDATE_CALL, "g.1", {"variables": {"category": "noise"}})
    for record in spool.records():
        await apply_record(store, record)  # ... and then the process died
    assert await writer.drain() == 5
    ticket = await store.by_linkedid("g.1")
    assert ticket is not None
    assert ticket.ivr_path == ["welcome", "main"]
    assert len(ticket.route_hops) == 1
    assert ticket.variables == {"category": "noise"}
    assert len(await store.list(limit=None)) == 1


def test_what_counts_as_an_outage() -> None:
    assert is_database_outage(ConnectionRefusedError())
    assert is_database_outage(TimeoutError())
    assert is_database_outage(sqlalchemy.exc.OperationalError("x", {}, Exception("locked")))
    assert is_database_outage(sqlalchemy.exc.InterfaceError("x", {}, Exception("closed")))
    assert not is_database_outage(sqlalchemy.exc.IntegrityError("x", {}, Exception("dup")))
    assert not is_database_outage(UnknownTicket("for call 1"))
    assert not is_database_outage(ValueError("bad"))
    assert is_database_outage(StoreNotStarted("the ticket store is not started"))


# -- the writer in front of a real store -----------------------------------------------------


@pytest.fixture
def locked(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock: the store's writes hang."""
    connection = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


async def test_writes_go_straight_to_the_store_when_it_is_up(
    spool: TicketSpool, store: TicketStore
) -> None:
    async with SpoolingTicketWriter(store, spool, clock=lambda: NOW) as writer:
        ticket_id = await writer.open_call("h.1", line="12345", caller="13800000000")
        assert ticket_id is not None and ticket_id.startswith("T20261127-")
        assert await writer.append_path("h.1", ["welcome"]) == ticket_id
        assert await writer.append_route_hop("h.1", unit="east") == ticket_id
        assert await writer.update_call("h.1", agent="1001") == ticket_id
        assert await writer.ticket_id_of("h.1") == ticket_id
    assert not spool.path.exists()


async def test_an_ended_call_is_forgotten_and_later_writes_still_land(
    spool: TicketSpool, store: TicketStore
) -> None:
    async with SpoolingTicketWriter(store, spool, clock=lambda: NOW) as writer:
        for number in range(50):
            await writer.open_call(f"f.{number}", line="12345")
            await writer.append_path(f"f.{number}", ["welcome"])
            writer.forget_call(f"f.{number}")
        assert not writer._calls  # what a busy day's ended calls must not leave behind
        await writer.append_path("f.7", ["main"])  # a late write of an ended call
        await writer.update_call("f.7", talk_seconds=12.0)
    ticket = await store.by_linkedid("f.7")
    assert ticket is not None
    assert ticket.ivr_path == ["welcome", "main"]
    assert ticket.talk_seconds == 12.0


async def test_a_locked_database_spools_and_every_write_lands_once(
    spool: TicketSpool, store: TicketStore, locked: sqlite3.Connection
) -> None:
    """The store hangs (another process holds the write lock): writes time out and are
    spooled, while the one that timed out is still queued in the store and lands later
    too. Each write must still be there exactly once."""
    writer = SpoolingTicketWriter(store, spool, write_timeout=0.3, clock=lambda: NOW)
    first = await writer.open_call("i.1", line="12345", caller="13800000000")
    assert first is not None
    assert await writer.append_path("i.1", ["welcome"]) == first

    locked.execute("BEGIN EXCLUSIVE")
    assert await writer.append_path("i.1", ["main", "complaint"]) is None  # timed out
    assert await writer.append_route_hop("i.1", unit="east", level="district") is None
    assert await writer.update_call("i.1", answered_at=ANSWERED, agent="1001") is None
    assert await writer.open_call("i.2", line="12315", created_at=NOW) is None
    assert await writer.append_path("i.2", ["welcome"]) is None
    assert writer.spooling
    assert await writer.ticket_id_of("i.2") is None
    assert await writer.drain() == 0  # still locked: nothing applied, nothing lost
    assert len(spool.records()) == 5

    locked.execute("ROLLBACK")
    assert await writer.drain() == 5
    assert not writer.spooling
    await writer.close()

    call = await store.by_linkedid("i.1")
    assert call is not None and call.id == first
    assert call.ivr_path == ["welcome", "main", "complaint"]
    assert call.route_hops == [
        {"unit": "east", "level": "district", "queue": None, "outcome": None}
    ]
    assert call.agent == "1001" and call.answered_at == ANSWERED
    second = await store.by_linkedid("i.2")
    assert second is not None
    assert second.line == "12315" and second.ivr_path == ["welcome"]
    assert second.created_at == NOW
    assert await writer.ticket_id_of("i.2") == second.id
    assert len(await store.list(limit=None)) == 2


async def _database_gone(store: TicketStore, db_path: Path) -> Path:
    """The database's folder disappears (a lost mount, say). The pooled connections would
    still reach the open file, so they are let go first, as a restarted database would."""
    for engine in (store._writer_engine, store._reader_engine):
        assert engine is not None
        await engine.dispose()
    away = db_path.parent.with_name("db-away")
    db_path.parent.rename(away)
    return away


async def test_a_vanished_database_file_spools_until_it_is_back(
    spool: TicketSpool, store: TicketStore, db_path: Path
) -> None:
    writer = SpoolingTicketWriter(store, spool, retry_seconds=0.05, clock=lambda: NOW)
    await writer.start()
    ticket_id = await writer.open_call("j.1", line="12345", caller="13800000000")
    assert ticket_id is not None
    await writer.append_path("j.1", ["welcome"])

    away = await _database_gone(store, db_path)
    assert await writer.append_path("j.1", ["main"]) is None
    assert await writer.update_call("j.1", ended_at=ANSWERED, outcome="goodbye") is None
    assert await writer.open_call("j.2", caller="13900000000") is None
    with pytest.raises(InvalidTicketUpdate):
        await writer.update_call("j.2", mood="angry")  # a bug is still a bug
    await asyncio.sleep(0.2)  # the background drain tries, and fails quietly
    assert len(spool.records()) == 3

    away.rename(db_path.parent)
    for _ in range(100):
        if not writer.spooling:
            break
        await asyncio.sleep(0.05)
    assert not writer.spooling
    await writer.close()

    call = await store.by_linkedid("j.1")
    assert call is not None
    assert call.ivr_path == ["welcome", "main"]
    assert call.outcome == "goodbye" and call.ended_at == ANSWERED
    late = await store.by_linkedid("j.2")
    assert late is not None and late.caller == "13900000000"
    assert late.created_at == NOW  # when the call came in, not when it was replayed


async def test_a_closed_store_spools_and_a_restarted_one_gets_the_writes(
    spool: TicketSpool, store: TicketStore
) -> None:
    writer = SpoolingTicketWriter(store, spool, clock=lambda: NOW)
    ticket_id = await writer.open_call("o.1", created_at=NOW)
    await store.close()
    assert await writer.append_path("o.1", ["goodbye"]) is None
    assert await writer.update_call("o.1", ended_at=ANSWERED) is None
    assert await writer.drain() == 0  # nothing refused while the store is closed
    assert not spool.rejected_path.exists()
    await store.start()
    await writer.close()  # its last drain
    ticket = await store.by_linkedid("o.1")
    assert ticket is not None and ticket.id == ticket_id
    assert ticket.ivr_path == ["goodbye"] and ticket.ended_at == ANSWERED
    assert not spool.has_pending()


async def test_while_anything_is_spooled_new_writes_queue_behind_it(
    spool: TicketSpool, store: TicketStore
) -> None:
    """The database is back but the spool is not drained yet: a new write must not overtake
    the call's older spooled writes."""
    writer = SpoolingTicketWriter(store, spool, clock=lambda: NOW)
    spool.append(OPEN_CALL, "k.1", {"created_at": NOW})
    assert await writer.update_call("k.1", agent="1001") is None
    assert [r.op for r in spool.records()] == [OPEN_CALL, UPDATE_CALL]
    assert await writer.drain() == 2
    assert await writer.update_call("k.1", agent="1002") is not None
    ticket = await store.by_linkedid("k.1")
    assert ticket is not None and ticket.agent == "1002"


async def test_a_new_writer_drains_what_a_dead_process_left(
    spool: TicketSpool, store: TicketStore
) -> None:
    spool.append(OPEN_CALL, "l.1", {"line": "12345", "created_at": NOW})
    writer = SpoolingTicketWriter(store, TicketSpool(spool.path), retry_seconds=60)
    await writer.start()
    for _ in range(100):
        if not writer.spooling:
            break
        await asyncio.sleep(0.02)
    await writer.close()
    assert await store.by_linkedid("l.1") is not None


async def test_an_append_for_a_call_it_does_not_know_is_spooled_as_an_append(
    spool: TicketSpool, store: TicketStore
) -> None:
    """A call opened before this writer existed (its memory is gone): the plain append is
    the only thing it can spool."""
    await store.open_call("m.1", created_at=NOW)
    await store.append_path("m.1", ["welcome"])
    writer = SpoolingTicketWriter(store, spool, clock=lambda: NOW)
    spool.append(UPDATE_CALL, "m.1", {"agent": "1001"})  # forces the spool
    await writer.append_path("m.1", ["main"])
    await writer.append_route_hop("m.1", unit="east")
    assert [r.op for r in spool.records()] == [UPDATE_CALL, APPEND_PATH, APPEND_ROUTE_HOP]
    assert await writer.drain() == 3
    ticket = await store.by_linkedid("m.1")
    assert ticket is not None
    assert ticket.ivr_path == ["welcome", "main"]
    assert [hop["unit"] for hop in ticket.route_hops] == ["east"]


async def test_a_call_back_in_the_menu_keeps_its_earlier_path(
    spool: TicketSpool, store: TicketStore
) -> None:
    """open_call of a call the store already has (it came back to the menu): the writer
    learns the stored path, so a spooled append does not wipe it."""
    await store.open_call("n.1", created_at=NOW)
    await store.append_path("n.1", ["first", "visit"])
    writer = SpoolingTicketWriter(store, spool, clock=lambda: NOW)
    assert await writer.open_call("n.1") is not None
    spool.append(UPDATE_CALL, "n.1", {"agent": "1001"})  # forces the spool
    await writer.append_path("n.1", ["survey"])
    assert spool.records()[-1].fields == {"ivr_path": ["first", "visit", "survey"]}
    await writer.drain()
    ticket = await store.by_linkedid("n.1")
    assert ticket is not None and ticket.ivr_path == ["first", "visit", "survey"]
