"""The ticket store on a real SQLite file. tests/integration/test_tickets_postgres.py runs the
same test functions (all but the test_sqlite_* ones) against PostgreSQL by providing its own
``ticket_db_url`` fixture."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ivr.tickets.deadlines import DEFAULT_POLICY
from ivr.tickets.errors import IllegalTransition, InvalidTicketUpdate, TicketError, UnknownTicket
from ivr.tickets.lifecycle import OutboundKind
from ivr.tickets.model import EXTRA_FIELDS, JSON_FIELDS, audit_as_json, ticket_as_json
from ivr.tickets.store import TicketDayKey, TicketStore, upgrade_schema

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ID_PATTERN = re.compile(r"^T20261127-\d{6}$")


@pytest.fixture
def ticket_db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'tickets.db'}"


@pytest.fixture
async def store(ticket_db_url: str) -> AsyncIterator[TicketStore]:
    async with TicketStore(ticket_db_url, deadlines=DEFAULT_POLICY, clock=lambda: NOW) as opened:
        yield opened


async def _call(store: TicketStore, linkedid: str, **extra: object) -> str:
    return await store.open_call(
        linkedid,
        line="12345",
        caller="13800000000",
        caller_name="张三",
        channel=f"PJSIP/caller-{linkedid}",
        sip_call_id=f"sip-{linkedid}",
        created_at=NOW,
        **extra,
    )


async def test_open_call_is_idempotent_on_linkedid(store: TicketStore) -> None:
    first = await _call(store, "1764230400.1")
    again = await _call(store, "1764230400.1")
    assert first == again
    assert ID_PATTERN.match(first)
    tickets = await store.list(limit=None)
    assert [t.id for t in tickets] == [first]
    ticket = tickets[0]
    assert ticket.status == "accepted"
    assert ticket.caller_name == "张三"
    assert ticket.id == f"T20261127-{ticket.number:06d}"
    assert [e.action for e in await store.history(first)] == ["accept"]


async def test_100_concurrent_open_calls_with_50_linkedids_make_50_tickets(
    store: TicketStore,
) -> None:
    linkedids = [f"1764230400.{i % 50}" for i in range(100)]
    ids = await asyncio.gather(*(_call(store, linkedid) for linkedid in linkedids))
    by_linkedid: dict[str, set[str]] = {}
    for linkedid, ticket_id in zip(linkedids, ids, strict=True):
        by_linkedid.setdefault(linkedid, set()).add(ticket_id)
    assert all(len(found) == 1 for found in by_linkedid.values())
    tickets = await store.list(limit=None)
    assert len(tickets) == 50
    assert {t.id for t in tickets} == set(ids)
    assert sorted(t.number for t in tickets) == list(range(1, 51))


async def test_concurrent_mixed_writes_and_reads(store: TicketStore) -> None:
    linkedids = [f"call-{i}" for i in range(60)]
    await asyncio.gather(*(_call(store, linkedid) for linkedid in linkedids))

    async def whole_call(linkedid: str) -> None:
        await store.append_path(linkedid, ["welcome", "lang"])
        await store.update_call(linkedid, category="complaint", answered_at=NOW)
        assert (await store.by_linkedid(linkedid)) is not None
        await store.append_path(linkedid, ["complaint"])
        await store.update_call(linkedid, ended_at=NOW + timedelta(seconds=90), outcome="agent")

    await asyncio.gather(*(whole_call(linkedid) for linkedid in linkedids))
    for ticket in await store.list(limit=None):
        assert ticket.ivr_path == ["welcome", "lang", "complaint"]
        assert ticket.talk_seconds == 90.0


async def test_one_bad_write_does_not_spoil_the_others(store: TicketStore) -> None:
    results = await asyncio.gather(
        *(_call(store, f"ok-{i}") for i in range(10)),
        store.update_call("no-such-call", category="help"),
        store.assign("T20261127-999999", "district-a", actor="alice"),
        return_exceptions=True,
    )
    assert all(isinstance(r, str) for r in results[:10])
    assert isinstance(results[10], UnknownTicket)
    assert isinstance(results[11], UnknownTicket)
    assert len(await store.list(limit=None)) == 10


async def test_update_call_sets_fields_merges_variables_and_fills_durations(
    store: TicketStore,
) -> None:
    ticket_id = await _call(store, "L1", language="zh", from_110=True)
    await store.update_call("L1", category="complaint", unit="district-a", level="district",
                            variables={"lang": "zh"}, location="Main St 1",
                            location_method="caller_input")
    await store.update_call(
        "L1",
        agent="agent-7",
        answered_at=NOW + timedelta(seconds=45),
        variables={"menu": "complaint"},
    )
    await store.update_call(
        "L1",
        ended_at=NOW + timedelta(seconds=345),
        outcome="agent",
        recording=f"{ticket_id}.wav",
        callback_requested=True,
    )
    ticket = await store.get(ticket_id)
    assert ticket.variables == {"lang": "zh", "menu": "complaint"}
    assert ticket.wait_seconds == 45.0
    assert ticket.talk_seconds == 300.0
    assert ticket.status == "accepted"  # call data never moves the lifecycle
    assert ticket.from_110 and ticket.callback_requested and ticket.language == "zh"
    assert ticket.answered_at == NOW + timedelta(seconds=45)
    assert ticket.answered_at is not None and ticket.answered_at.tzinfo is not None


async def test_unanswered_call_waits_until_hang_up(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1")
    await store.update_call("L1", ended_at=NOW + timedelta(seconds=20), outcome="caller_hung_up")
    ticket = await store.get(ticket_id)
    assert (ticket.wait_seconds, ticket.talk_seconds) == (20.0, None)


async def test_update_call_rejects_bad_input(store: TicketStore) -> None:
    await _call(store, "L1")
    with pytest.raises(InvalidTicketUpdate, match="'status' is not a call field"):
        await store.update_call("L1", status="closed")
    with pytest.raises(InvalidTicketUpdate, match="answered_at: naive datetime"):
        await store.update_call("L1", answered_at=datetime(2026, 11, 27, 8, 0))
    with pytest.raises(InvalidTicketUpdate, match="emergency: expected bool"):
        await store.update_call("L1", emergency="yes")
    with pytest.raises(InvalidTicketUpdate, match="wait_seconds: expected int or float"):
        await store.update_call("L1", wait_seconds=True)
    with pytest.raises(UnknownTicket, match="unknown ticket for call L2"):
        await store.update_call("L2", category="help")
    with pytest.raises(InvalidTicketUpdate, match="'bogus' is not a call field"):
        await store.open_call("L3", line="12345", caller="1", bogus=1)


async def test_path_and_route_hops_are_appended(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1")
    await store.append_path("L1", ["welcome"])
    await store.append_path("L1", ["main", "complaint"])
    await store.append_route_hop("L1", unit="community-3", level="community",
                                 queue="q-community-3", outcome="no_answer")
    await store.append_route_hop("L1", unit="street-2", level="street", queue="q-street-2",
                                 outcome="answered")
    ticket = await store.get(ticket_id)
    assert ticket.ivr_path == ["welcome", "main", "complaint"]
    assert ticket.route_hops == [
        {"unit": "community-3", "level": "community", "queue": "q-community-3",
         "outcome": "no_answer"},
        {"unit": "street-2", "level": "street", "queue": "q-street-2", "outcome": "answered"},
    ]


async def test_lookups(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1")
    ticket = await store.get(ticket_id)
    assert (await store.get(ticket.number)).id == ticket_id
    assert (await store.get(str(ticket.number))).id == ticket_id
    assert (await store.get(ticket_id.lower())).id == ticket_id
    found = await store.by_linkedid("L1")
    assert found is not None and found.id == ticket_id
    by_sip = await store.by_sip_call_id("sip-L1")
    assert by_sip is not None and by_sip.id == ticket_id
    assert await store.by_linkedid("nope") is None
    assert await store.by_sip_call_id("nope") is None
    with pytest.raises(UnknownTicket, match="unknown ticket T20261127-000099"):
        await store.get("T20261127-000099")
    with pytest.raises(UnknownTicket):
        await store.history("T20261127-000099")


async def test_whole_closed_loop_with_audit(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1", category="complaint")
    assigned = await store.assign(ticket_id, "district-a", actor="alice", level="district",
                                  note="noise at night")
    assert assigned.status == "assigned"
    assert assigned.unit == "district-a" and assigned.level == "district"
    assert assigned.deadline == NOW + timedelta(days=7)
    later = NOW + timedelta(hours=1)
    assert (await store.start_work(ticket_id, actor="bob", now=later)).status == "in_progress"
    resolved = await store.resolve(ticket_id, actor="bob", note="talked to the bar", now=later)
    assert resolved.status == "resolved"
    followed = await store.follow_up(ticket_id, "基本满意", actor="carol")
    assert (followed.status, followed.rating) == ("followed_up", "basically_satisfied")
    evaluated = await store.evaluate(ticket_id, actor="dave", score=90)
    assert (evaluated.status, evaluated.evaluation_score) == ("evaluated", 90)
    await store.note(ticket_id, "citizen called to thank", actor="carol")
    closed = await store.close_ticket(ticket_id, actor="dave")
    assert closed.status == "closed"
    assert (await store.get(ticket_id)).status == "closed"

    history = [audit_as_json(e) for e in await store.history(ticket_id)]
    assert [(h["action"], h["from_status"], h["to_status"], h["actor"]) for h in history] == [
        ("accept", None, "accepted", "ivr"),
        ("assign", "accepted", "assigned", "alice"),
        ("start", "assigned", "in_progress", "bob"),
        ("resolve", "in_progress", "resolved", "bob"),
        ("follow_up", "resolved", "followed_up", "carol"),
        ("evaluate", "followed_up", "evaluated", "dave"),
        ("note", "evaluated", "evaluated", "carol"),
        ("close", "evaluated", "closed", "dave"),
    ]
    assert history[1]["note"] == "to district-a: noise at night"
    assert history[3]["at"] == later.isoformat()
    assert history[5]["note"] == "score 90"
    assert all(h["ticket"] == ticket_id for h in history)


async def test_return_and_reassign_gives_new_unit_a_fresh_deadline(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1", category="help")
    await store.assign(ticket_id, "district-a", actor="alice")
    later = NOW + timedelta(hours=5)
    returned = await store.return_(ticket_id, "not our district", actor="bob", now=later)
    assert (returned.status, returned.unit) == ("returned", None)
    reassigned = await store.assign(ticket_id, "district-b", actor="alice", now=later)
    assert (reassigned.status, reassigned.unit) == ("assigned", "district-b")
    assert reassigned.deadline == later + timedelta(hours=24)
    notes = [e.note for e in await store.history(ticket_id)]
    assert "by district-a: not our district" in notes
    with pytest.raises(TicketError, match="a reason is needed"):
        await store.return_(ticket_id, "  ", actor="bob")


async def test_dispatch_keeps_deadline(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1", category="complaint")
    assigned = await store.assign(ticket_id, "district-a", actor="alice")
    dispatched = await store.dispatch(ticket_id, "street-3", actor="bob", level="street",
                                      now=NOW + timedelta(days=1))
    assert (dispatched.unit, dispatched.level, dispatched.status) == (
        "street-3", "street", "assigned")
    assert dispatched.deadline == assigned.deadline
    with pytest.raises(TicketError, match="already with street-3"):
        await store.dispatch(ticket_id, "street-3", actor="bob")
    history = await store.history(ticket_id)
    assert history[-1].note == "from district-a to street-3"


async def test_dissatisfied_follow_up_reopens_at_the_unit(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1", priority="urgent")
    await store.assign(ticket_id, "water-co", actor="alice")
    await store.resolve(ticket_id, actor="bob")
    later = NOW + timedelta(days=2)
    reopened = await store.follow_up(ticket_id, "dissatisfied", actor="carol", now=later)
    assert (reopened.status, reopened.unit, reopened.rating) == (
        "reopened", "water-co", "dissatisfied")
    assert reopened.deadline == later + timedelta(hours=2)


async def test_illegal_action_changes_nothing(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1")
    with pytest.raises(IllegalTransition) as caught:
        await store.resolve(ticket_id, actor="bob")
        await store.follow_up(ticket_id, "satisfied", actor="bob")
        await store.follow_up(ticket_id, "satisfied", actor="bob")
    assert str(caught.value) == (
        f"ticket {ticket_id} is followed_up: cannot follow_up; allowed actions: evaluate, note"
    )
    assert (await store.get(ticket_id)).status == "followed_up"
    assert len(await store.history(ticket_id)) == 3
    with pytest.raises(IllegalTransition, match="is followed_up: cannot start"):
        await store.start_work(ticket_id, actor="bob")
    with pytest.raises(TicketError, match="an actor is needed"):
        await store.note(ticket_id, "x", actor="")


async def test_merge_duplicates(store: TicketStore) -> None:
    original = await _call(store, "L1")
    first_dup = await _call(store, "L2")
    second_dup = await _call(store, "L3")
    await store.assign(original, "district-a", actor="alice")
    await store.merge(first_dup, second_dup, actor="alice")
    merged = await store.merge(second_dup, original, actor="alice", note="same noise")
    assert (merged.status, merged.parent_id) == ("merged", original)
    # The duplicate merged earlier now points at the original too.
    assert (await store.get(first_dup)).parent_id == original
    assert (await store.history(original))[-1].note == f"duplicate {second_dup} joined: same noise"
    assert (await store.history(second_dup))[-1].note == f"into {original}: same noise"
    with pytest.raises(TicketError, match=f"{second_dup} is itself merged"):
        await store.merge(original, second_dup, actor="alice")
    with pytest.raises(TicketError, match="into itself"):
        await store.merge(original, original, actor="alice")
    with pytest.raises(IllegalTransition, match="is merged: cannot merge"):
        await store.merge(second_dup, original, actor="alice")


async def test_overdue_listing_and_marking_with_fixed_clock(store: TicketStore) -> None:
    urgent = await _call(store, "L1", category="help", priority="urgent")
    complaint = await _call(store, "L2", category="complaint")
    await _call(store, "L3")  # accepted: no deadline yet
    await store.assign(urgent, "water-co", actor="alice")
    await store.assign(complaint, "district-a", actor="alice")

    three_hours = NOW + timedelta(hours=3)
    late = await store.list(overdue=True, now=three_hours)
    assert [t.id for t in late] == [urgent]
    assert urgent not in [t.id for t in await store.list(overdue=False, now=three_hours)]
    assert await store.list(overdue=True, now=NOW + timedelta(hours=1)) == []

    assert await store.mark_overdue(three_hours) == [urgent]
    assert await store.mark_overdue(three_hours + timedelta(hours=1)) == []  # once per deadline
    flagged = await store.get(urgent)
    assert flagged.overdue_at == three_hours
    assert (await store.history(urgent))[-1].action == "overdue"

    # Resolving late keeps the record; reopening gives a fresh deadline and clears the flag.
    await store.resolve(urgent, actor="bob", now=three_hours)
    assert (await store.get(urgent)).overdue_at == three_hours
    assert await store.list(overdue=True, now=three_hours) == []
    reopened = await store.follow_up(urgent, "不满意", actor="carol", now=three_hours)
    assert reopened.overdue_at is None
    eight_days = NOW + timedelta(days=8)
    assert sorted(await store.mark_overdue(eight_days)) == sorted([urgent, complaint])


async def test_list_filters(store: TicketStore) -> None:
    ids = [await _call(store, f"L{i}") for i in range(5)]
    newer = await store.open_call("L9", line="12315", caller="1", created_at=NOW + timedelta(
        days=1))
    await store.assign(ids[0], "district-a", actor="alice")
    await store.assign(ids[1], "district-b", actor="alice")
    assert [t.id for t in await store.list(limit=None)] == [newer, *reversed(ids)]
    assert [t.id for t in await store.list(limit=2)] == [newer, ids[4]]
    assert [t.id for t in await store.list(status="assigned")] == [ids[1], ids[0]]
    assert [t.id for t in await store.list(status=["assigned", "accepted"], unit="district-a")
            ] == [ids[0]]
    assert [t.id for t in await store.list(since=NOW + timedelta(hours=1))] == [newer]
    assert newer.startswith("T20261128-")
    with pytest.raises(TicketError, match="unknown status 'bogus'; statuses: accepted, "):
        await store.list(status="bogus")


async def test_ticket_as_json_gives_the_issue_fields_first(store: TicketStore) -> None:
    ticket_id = await _call(store, "L1", category="consultation", emergency=False)
    await store.update_call("L1", answered_at=NOW + timedelta(seconds=5))
    data = ticket_as_json(await store.get(ticket_id))
    assert tuple(data)[: len(JSON_FIELDS)] == JSON_FIELDS
    assert tuple(data)[len(JSON_FIELDS):] == EXTRA_FIELDS
    assert data["id"] == ticket_id
    assert data["line"] == "12345"
    assert data["created_at"] == "2026-11-27T08:00:00+00:00"
    assert data["answered_at"] == "2026-11-27T08:00:05+00:00"
    assert data["ended_at"] is None and data["talk_seconds"] is None
    assert data["wait_seconds"] == 5.0
    assert data["ivr_path"] == [] and data["variables"] == {}


async def test_data_survives_restart_and_upgrade_is_idempotent(ticket_db_url: str) -> None:
    async with TicketStore(ticket_db_url, clock=lambda: NOW) as first:
        ticket_id = await _call(first, "L1")
        await first.assign(ticket_id, "district-a", actor="alice")
    await upgrade_schema(ticket_db_url)
    async with TicketStore(ticket_db_url, clock=lambda: NOW) as second:
        ticket = await second.get(ticket_id)
        assert (ticket.status, ticket.unit) == ("assigned", "district-a")
        assert await _call(second, "L1") == ticket_id


async def test_two_stores_on_one_database_write_together(ticket_db_url: str) -> None:
    """The controller and the CLI (or two controllers) writing at the same moment."""
    async with (
        TicketStore(ticket_db_url, clock=lambda: NOW) as controller,
        TicketStore(ticket_db_url, clock=lambda: NOW) as cli,
    ):
        linkedids = [f"L{i % 30}" for i in range(60)]
        ids = await asyncio.gather(
            *(_call(controller if i % 2 else cli, linkedid) for i, linkedid in enumerate(linkedids))
        )
        assert len(set(ids)) == 30
        await asyncio.gather(
            *(cli.note(ticket_id, "seen", actor="supervisor") for ticket_id in set(ids)),
            *(controller.update_call(f"L{i}", outcome="agent") for i in range(30)),
        )
        assert len(await controller.list(limit=None)) == 30


async def test_store_must_be_started(ticket_db_url: str) -> None:
    idle = TicketStore(ticket_db_url)
    with pytest.raises(TicketError, match="not started"):
        await idle.open_call("L1", line="12345", caller="1")
    with pytest.raises(TicketError, match="not started"):
        await idle.list()


async def test_sqlite_runs_in_wal_with_full_sync(store: TicketStore, ticket_db_url: str) -> None:
    await _call(store, "L1")
    engine = create_async_engine(ticket_db_url)
    async with engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    await engine.dispose()
    writer = store._writer_engine
    assert writer is not None
    async with writer.connect() as connection:
        assert (await connection.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
        assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 30000


async def test_sqlite_readers_keep_a_small_cache_and_a_fixed_pool(store: TicketStore) -> None:
    """A dozen readers each growing SQLite's 2 MB default cache, and overflow connections
    opened and closed (a thread each) under load, made the controller grow in the soak."""
    from ivr.tickets.store import SQLITE_READER_CACHE_KIB, SQLITE_READERS

    reader = store._reader_engine
    assert reader is not None and reader is not store._writer_engine
    async with reader.connect() as connection:
        cache = (await connection.execute(text("PRAGMA cache_size"))).scalar()
        assert cache == -SQLITE_READER_CACHE_KIB
    assert reader.pool.size() == SQLITE_READERS  # type: ignore[attr-defined]
    assert reader.pool._max_overflow == 0  # type: ignore[attr-defined]


async def test_sqlite_in_memory_works_for_tests() -> None:
    async with TicketStore("sqlite+aiosqlite:///:memory:", clock=lambda: NOW) as memory:
        ticket_id = await _call(memory, "L1")
        assert (await memory.get(ticket_id)).status == "accepted"


async def test_caller_location_and_history_come_from_the_latest_located_ticket(
    store: TicketStore,
) -> None:
    calls = [
        ("a", "13900000001", "c-east-1-1", "ivr"),
        ("b", "13900000001", "city", "city"),
        ("c", "13900000002", "d-west", "zone"),
    ]
    for linkedid, caller, location, method in calls:
        await store.open_call(
            linkedid, caller=caller, created_at=NOW, location=location, location_method=method
        )

    assert await store.caller_location("13900000001") == "c-east-1-1"
    assert await store.caller_location("13900000003") is None
    history = await store.caller_history("13900000001")
    newest_first = [await store.by_linkedid(linkedid) for linkedid in ("b", "a")]
    assert [entry["ticket_id"] for entry in history] == [t.id for t in newest_first if t]


async def test_outbound_attempts_are_counted_and_audited_before_dialling(
    store: TicketStore,
) -> None:
    ticket_id = await _call(store, "out-1")
    await store.resolve(ticket_id, actor="agent-1")
    first = await store.record_outbound_attempt(
        ticket_id, OutboundKind.FOLLOW_UP, actor="dialer", note="dialling 13800000000", now=NOW
    )
    assert first.followup_attempts == 1 and first.followup_last_at == NOW
    assert [t.id for t in await store.outbound_candidates()] == [ticket_id]

    rated = await store.follow_up(ticket_id, "dissatisfied", actor="followup-call")
    assert rated.status == "reopened"
    assert await store.outbound_candidates() == []
    # Resolved again: a new follow-up round, from the first attempt.
    again = await store.resolve(ticket_id, actor="agent-1")
    assert again.followup_attempts == 0 and again.followup_last_at is None
    notes = [(e.action, e.note) for e in await store.history(ticket_id)]
    assert ("followup_call", "attempt 1: dialling 13800000000") in notes


async def test_a_callback_is_owed_after_the_call_until_the_citizen_answers(
    store: TicketStore,
) -> None:
    ticket_id = await _call(store, "out-2", callback_requested=True, outcome="abandoned")
    assert await store.outbound_candidates() == []  # the call is still going on
    await store.update_call("out-2", ended_at=NOW)
    assert [t.id for t in await store.outbound_candidates()] == [ticket_id]

    tried = await store.record_outbound_attempt(
        ticket_id, OutboundKind.CALLBACK, actor="dialer", note="agent first", now=NOW
    )
    assert tried.callback_attempts == 1 and tried.callback_last_at == NOW
    done = await store.callback_done(ticket_id, actor="dialer", note="agent 1013", now=NOW)
    assert done.callback_done_at == NOW
    assert await store.outbound_candidates() == []
    assert ticket_as_json(done)["callback_done_at"] == NOW.isoformat()


async def test_the_database_counts_the_service_level_as_the_reports_do(
    store: TicketStore,
) -> None:
    """The live service level is counted in SQL (offered_sql, answered_within_sql); on every
    mix of outcome, answer, wait and queueing it must equal what measure() finds in Python."""
    from itertools import product

    from ivr.live_metrics import service_level_conditions
    from ivr.reports.load import load_records
    from ivr.reports.metrics import GroupBy, service_metrics
    from ivr.reports.records import CALL_ENDS, HUNG_UP_OUTCOME, UNANSWERED_OUTCOMES
    from ivr.tickets.model import Ticket

    outcomes = [None, "abandoned", HUNG_UP_OUTCOME, "transferred_110", *CALL_ENDS,
                *UNANSWERED_OUTCOMES]  # fmt: skip
    mixes = product(outcomes, (None, NOW), (None, 5.0, 20.0, 21.0), (False, True), ("d-a", None))
    for number, (outcome, answered_at, wait, queued, unit) in enumerate(mixes):
        linkedid = f"mix-{number}"
        await _call(store, linkedid)
        await store.update_call(
            linkedid, outcome=outcome, answered_at=answered_at, wait_seconds=wait, unit=unit
        )
        if queued:
            await store.append_route_hop(linkedid, unit=unit or "city", queue="q")
    await store.open_call("too-old", line="12345", created_at=NOW - timedelta(hours=2))
    await store.update_call("too-old", outcome="answered", wait_seconds=1.0, unit="d-a")

    since = NOW - timedelta(hours=1)
    counted = await store.count_since(since, Ticket.unit, service_level_conditions(20))
    records = await load_records(store, since=since, with_history=False)
    expected = {
        row.group: {"offered": row.offered, "answered_within": row.answered_within}
        for row in service_metrics(records, now=NOW, tz=UTC, by=GroupBy.UNIT, answer_within=20)
    }
    assert {unit or "(none)": row for unit, row in counted.items()} == expected
    assert expected["d-a"]["offered"] > expected["d-a"]["answered_within"] > 0


async def test_tickets_are_counted_per_location_category_and_local_day(
    store: TicketStore,
) -> None:
    """Shanghai is 8 hours ahead of UTC: a ticket opened at 17:00 UTC is on the next day there."""
    shanghai = ZoneInfo("Asia/Shanghai")
    evening = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
    opened = {
        "before": (evening - timedelta(days=3), "noise", "c1"),
        "late": (evening - timedelta(hours=2), "noise", "c1"),  # 23:00 in Shanghai
        "midnight": (evening - timedelta(hours=1), "noise", "c1"),  # 00:00 the next day
        "night": (evening, "noise", "c1"),
        "water": (evening, "water", "c1"),
        "unsorted": (evening, None, None),  # counts in the city's totals only
        "after": (evening + timedelta(days=1), "noise", "c2"),
    }
    for linkedid, (created_at, category, location) in opened.items():
        known = {"category": category, "location": location} if category else {}
        await store.open_call(linkedid, line="12345", created_at=created_at, **known)
    first, last = date(2026, 11, 26), date(2026, 11, 27)

    counted = await store.ticket_counts_per_day(first_day=first, last_day=last, tz=shanghai)
    assert counted == {
        TicketDayKey("c1", "noise", first): 1,
        TicketDayKey("c1", "noise", last): 2,
        TicketDayKey("c1", "water", last): 1,
        TicketDayKey(None, None, last): 1,
    }
    assert await store.ticket_counts_per_day(first_day=first, last_day=last, tz=UTC) == {
        TicketDayKey("c1", "noise", first): 3,
        TicketDayKey("c1", "water", first): 1,
        TicketDayKey(None, None, first): 1,
        TicketDayKey("c2", "noise", last): 1,
    }
    assert await store.ticket_counts_per_day(first_day=last, last_day=first, tz=UTC) == {}


async def test_the_ids_of_tickets_by_category_places_and_time(store: TicketStore) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    day_start = datetime(2026, 11, 27, tzinfo=shanghai)  # 16:00 UTC the day before
    ids = {
        linkedid: await store.open_call(linkedid, line="12345", created_at=day_start + offset,
                                        category=category, location=location)
        for linkedid, offset, category, location in [
            ("first", timedelta(0), "noise", "c1"),
            ("second", timedelta(hours=23, minutes=59), "noise", "c2"),
            ("too-early", -timedelta(seconds=1), "noise", "c1"),
            ("next-day", timedelta(days=1), "noise", "c1"),
            ("water", timedelta(hours=1), "water", "c1"),
            ("elsewhere", timedelta(hours=1), "noise", "c3"),
        ]
    }  # fmt: skip

    async def noise_that_day(locations: list[str]) -> list[str]:
        return await store.ticket_ids_opened(
            category="noise", locations=locations, start=day_start, end=day_start + timedelta(1)
        )

    # More places than one statement takes parameters for on some SQLite builds.
    assert await noise_that_day(["c1", "c2", *(f"x{n}" for n in range(1_200))]) == [
        ids["first"],
        ids["second"],
    ]
    assert await noise_that_day(["c3"]) == [ids["elsewhere"]]
    assert await noise_that_day([]) == []


async def test_sqlite_the_caller_reads_use_the_caller_index(store: TicketStore) -> None:
    """Each call reads its caller's latest tickets twice: a table scan there made a soak's
    calls fail once the table held ~10,000 tickets."""
    from sqlalchemy import select

    from ivr.tickets.model import Ticket

    await _call(store, "L1")
    query = (
        select(Ticket.location)
        .where(Ticket.caller == "13800000000")
        .order_by(Ticket.number.desc())
        .limit(5)
    )
    compiled = query.compile(compile_kwargs={"literal_binds": True})
    reader = store._reader_engine
    assert reader is not None
    async with reader.connect() as connection:
        plan = (await connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))).all()
    assert "ix_tickets_caller_number" in " ".join(str(row) for row in plan)
