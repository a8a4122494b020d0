"""Tickets from Asterisk's cdr_csv records: parsing, grouping, and reconcile against a real
SQLite ticket store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.home import Home
from ivr.reconcile import (
    CdrCall,
    CdrFollower,
    agent_of,
    caller_name_of,
    default_cdr_path,
    parse_cdr_csv,
    parse_cdr_text,
    reconcile,
)
from ivr.tickets.store import TicketStore

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
#: Just after the calls of the rows below.
RIGHT_AFTER = datetime(2026, 11, 27, 6, 33, tzinfo=UTC)


def _row(
    *,
    src: str = "13800001111",
    dst: str = "12345",
    context: str = "from-citizens",
    clid: str = '"" <13800001111>',
    channel: str = "PJSIP/anonymous-00000000",
    dstchannel: str = "",
    lastapp: str = "Queue",
    start: str = "2026-11-27 06:31:32",
    answer: str = "2026-11-27 06:31:32",
    end: str = "2026-11-27 06:31:35",
    duration: int = 3,
    billsec: int = 3,
    disposition: str = "ANSWERED",
    uniqueid: str = "1795761092.0",
    userfield: str = "",
) -> str:
    """One line as cdr_csv writes it: strings quoted (quotes doubled), numbers bare."""

    def q(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    fields = [
        q(""), q(src), q(dst), q(context), q(clid), q(channel), q(dstchannel), q(lastapp),
        q("fallback,t,,,300"), q(start), q(answer), q(end), str(duration), str(billsec),
        q(disposition), q("DOCUMENTATION"), q(uniqueid), q(userfield),
    ]  # fmt: skip
    return ",".join(fields)


#: Two rows Asterisk 22 wrote in this project's integration run (var/pbx/log/cdr-csv).
ASTERISK_ROWS = (
    '"","13800000001","12345","from-citizens",""""" <13800000001>","PJSIP/anonymous-00000000",'
    '"PJSIP/1013-00000001","Queue","q-c-east-1-1-zh,rt,,,30","2026-11-27 06:37:55",'
    '"2026-11-27 06:37:55","2026-11-27 06:38:51",55,55,"ANSWERED","DOCUMENTATION",'
    '"1795761475.0",""\n'
    '"","13900000001","12345","from-citizens",""""" <13900000001>","PJSIP/anonymous-00000000",'
    '"PJSIP/1009-00000001","Queue","q-d-east-zh,rt,,,90","2026-11-27 06:39:52",'
    '"2026-11-27 06:39:52","2026-11-27 06:40:04",11,11,"ANSWERED","DOCUMENTATION",'
    '"1795761592.0",""\n'
)
#: A fallback row as quoted in the design notes (one quote more around the empty name).
REAL_ROW = (
    '"","13800001111","12345","from-citizens","""""" <13800001111>","PJSIP/anonymous-00000000",'
    '"PJSIP/1001-00000001","Queue","fallback,t,,,300","2026-11-27 06:31:32",'
    '"2026-11-27 06:31:32","2026-11-27 06:31:35",2,2,"ANSWERED","DOCUMENTATION",'
    '"1795761092.0","fallback"'
)


def test_the_real_row_is_one_fallback_call_answered_by_agent_1001() -> None:
    calls, problems = parse_cdr_text(REAL_ROW + "\n")
    assert problems == []
    assert calls == [
        CdrCall(
            linkedid="1795761092.0",
            line="12345",
            caller="13800001111",
            caller_name=None,
            channel="PJSIP/anonymous-00000000",
            start=datetime(2026, 11, 27, 6, 31, 32, tzinfo=UTC),
            answer=datetime(2026, 11, 27, 6, 31, 32, tzinfo=UTC),
            end=datetime(2026, 11, 27, 6, 31, 35, tzinfo=UTC),
            agent="1001",
            disposition="ANSWERED",
            fallback=True,
            rows=1,
        )
    ]


def test_rows_asterisk_wrote() -> None:
    calls, problems = parse_cdr_text(ASTERISK_ROWS)
    assert problems == []
    assert [(c.linkedid, c.caller, c.caller_name, c.agent, c.fallback) for c in calls] == [
        ("1795761475.0", "13800000001", None, "1013", False),
        ("1795761592.0", "13900000001", None, "1009", False),
    ]
    assert calls[0].end == datetime(2026, 11, 27, 6, 38, 51, tzinfo=UTC)


def test_rows_of_one_call_are_grouped_by_uniqueid() -> None:
    text = "\n".join(
        [
            # The queue rang 1001, who did not answer, then 1002, who did.
            _row(dstchannel="PJSIP/1001-00000001", disposition="NO ANSWER", answer="",
                 end="2026-11-27 06:31:50", uniqueid="1795761100.4"),
            _row(dstchannel="PJSIP/1002-00000002", answer="2026-11-27 06:31:52",
                 end="2026-11-27 06:33:00", uniqueid="1795761100.4", userfield="fallback"),
        ]
    )  # fmt: skip
    [call] = parse_cdr_text(text)[0]
    assert call.rows == 2
    assert call.agent == "1002"
    assert call.answer == datetime(2026, 11, 27, 6, 31, 52, tzinfo=UTC)
    assert call.end == datetime(2026, 11, 27, 6, 33, tzinfo=UTC)
    assert call.disposition == "ANSWERED"
    assert call.fallback


def test_a_call_nobody_answered_has_no_agent() -> None:
    text = _row(
        dstchannel="PJSIP/1001-00000003", disposition="NO ANSWER", answer="", uniqueid="9.1"
    )
    [call] = parse_cdr_text(text)[0]
    assert call.agent is None
    assert not call.agent_answered
    assert call.disposition == "NO ANSWER"
    assert call.answer is None
    assert not call.fallback


def test_only_citizens_calls_count() -> None:
    text = "\n".join(
        [
            _row(uniqueid="1.1"),
            _row(context="from-agents", src="1001", dst="110", uniqueid="1.2"),
            _row(context="hotline-call", uniqueid="1.3"),
        ]
    )
    assert [call.linkedid for call in parse_cdr_text(text)[0]] == ["1.1"]


def test_malformed_rows_are_reported_with_their_line_and_skipped() -> None:
    text = "\n".join(
        [
            _row(uniqueid="2.1"),
            '"only","three","columns"',
            _row(uniqueid="2.2", start="yesterday"),
            _row(uniqueid=""),
            _row(uniqueid="2.3", end="2026-13-45 99:99:99"),
            "",
            _row(uniqueid="2.4"),
            '"torn","row","with an open quote',
        ]
    )
    calls, problems = parse_cdr_text(text, "Master.csv")
    assert [call.linkedid for call in calls] == ["2.1", "2.4"]
    shown = [str(problem) for problem in problems]
    assert shown[0] == "Master.csv:2: 3 columns, expected 18 (cdr_csv with loguniqueid and " \
        "loguserfield) or 21"  # fmt: skip
    assert shown[1].startswith("Master.csv:3: start 'yesterday' is not a time")
    assert shown[2].startswith("Master.csv:4: no uniqueid")
    assert shown[3].startswith("Master.csv:5: end ")
    assert shown[4].startswith("Master.csv:8: ")
    assert len(shown) == 5


def test_newcdrcolumns_linkedid_is_used_when_present() -> None:
    text = _row(uniqueid="3.7") + ',"","3.5","12"'
    [call] = parse_cdr_text(text)[0]
    assert call.linkedid == "3.5"


def test_calls_come_out_in_start_order() -> None:
    text = "\n".join(
        [
            _row(uniqueid="4.2", start="2026-11-27 07:00:00"),
            _row(uniqueid="4.1", start="2026-11-27 06:00:00"),
        ]
    )
    assert [call.linkedid for call in parse_cdr_text(text)[0]] == ["4.1", "4.2"]


@pytest.mark.parametrize(
    ("clid", "caller", "name"),
    [
        ('"" <13800001111>', "13800001111", None),
        ('"张三" <13800001111>', "13800001111", "张三"),
        ('"Zhang, San" <13800001111>', "13800001111", "Zhang, San"),
        ("13800001111", "13800001111", None),
        ("Anonymous", "", "Anonymous"),
        ("", "", None),
    ],
)
def test_caller_name_of(clid: str, caller: str, name: str | None) -> None:
    assert caller_name_of(clid, caller) == name


@pytest.mark.parametrize(
    ("channel", "agent"),
    [
        ("PJSIP/1001-00000001", "1001"),
        ("PJSIP/agent-7-0000000a", "agent-7"),
        ("Local/1003@agents-00000003;1", "1003"),
        ("", None),
        ("garbage", None),
    ],
)
def test_agent_of(channel: str, agent: str | None) -> None:
    assert agent_of(channel) == agent


def test_parse_cdr_csv_missing_file_has_no_call(tmp_path: Path) -> None:
    assert parse_cdr_csv(tmp_path / "nowhere" / "Master.csv") == []


def test_parse_cdr_csv_survives_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    good = _row(uniqueid="5.1", clid='"张三" <13800001111>').encode()
    path.write_bytes(b"\xff\xfe\x00garbage\n" + good + b"\n\x00\x00\n")
    [call] = parse_cdr_csv(path)
    assert call.caller_name == "张三"


def test_default_cdr_path(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert default_cdr_path(home) == tmp_path / "var/pbx/log/cdr-csv/Master.csv"


# -- reconcile against a real store ----------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TicketStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'tickets.db'}"
    async with TicketStore(url, clock=lambda: NOW) as opened:
        yield opened


@pytest.fixture
def cdr(tmp_path: Path) -> Path:
    path = default_cdr_path(Home(tmp_path))
    path.parent.mkdir(parents=True)
    rows = [
        REAL_ROW,
        # The controller was up and opened a ticket for this one.
        _row(uniqueid="1795761200.7", start="2026-11-27 06:40:00", answer="2026-11-27 06:40:00",
             end="2026-11-27 06:45:00", dstchannel="PJSIP/1003-00000009"),
        # Fallback, nobody answered: the caller gave up after 40 s.
        _row(uniqueid="1795761300.9", start="2026-11-27 06:50:00", answer="2026-11-27 06:50:00",
             end="2026-11-27 06:50:40", dstchannel="PJSIP/1001-0000000b",
             disposition="NO ANSWER", userfield="fallback", clid='"李四" <13900002222>',
             src="13900002222", dst="12315"),
        _row(context="from-agents", uniqueid="1795761400.1", src="1001", dst="12345"),
        "not,a,row",
    ]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path


async def test_reconcile_opens_a_ticket_for_each_call_without_one(
    store: TicketStore, cdr: Path
) -> None:
    existing = await store.open_call("1795761200.7", line="12345", caller="13800001111")
    report = await reconcile(store, cdr)
    assert report.already_present == 1
    assert report.failed == []
    assert len(report.created) == 2

    fallback_answered = await store.by_linkedid("1795761092.0")
    assert fallback_answered is not None
    assert fallback_answered.id == report.created[0]
    assert fallback_answered.id.startswith("T20261127-")
    assert fallback_answered.line == "12345"
    assert fallback_answered.caller == "13800001111"
    assert fallback_answered.caller_name is None
    assert fallback_answered.channel == "PJSIP/anonymous-00000000"
    assert fallback_answered.agent == "1001"
    assert fallback_answered.outcome == "fallback"
    assert fallback_answered.status == "accepted"
    assert fallback_answered.created_at == datetime(2026, 11, 27, 6, 31, 32, tzinfo=UTC)
    assert fallback_answered.answered_at == datetime(2026, 11, 27, 6, 31, 32, tzinfo=UTC)
    assert fallback_answered.ended_at == datetime(2026, 11, 27, 6, 31, 35, tzinfo=UTC)
    assert fallback_answered.wait_seconds == 0
    assert fallback_answered.talk_seconds == 3
    assert fallback_answered.variables == {"reconciled": "cdr", "cdr_disposition": "ANSWERED"}
    history = await store.history(fallback_answered.id)
    assert [entry.action for entry in history] == ["accept", "note"]
    assert history[1].actor == "system"
    assert "fallback queue" in (history[1].note or "")

    unanswered = await store.by_linkedid("1795761300.9")
    assert unanswered is not None
    assert unanswered.line == "12315"
    assert unanswered.caller_name == "李四"
    assert unanswered.agent is None
    assert unanswered.answered_at is None
    assert unanswered.outcome == "fallback"
    assert unanswered.wait_seconds == 40
    assert unanswered.talk_seconds is None

    untouched = await store.get(existing)
    assert untouched.variables == {}
    assert len(await store.list(limit=None)) == 3


async def test_reconcile_twice_creates_nothing_new(store: TicketStore, cdr: Path) -> None:
    first = await reconcile(store, cdr)
    again = await reconcile(store, cdr)
    assert len(first.created) == 3
    assert again.created == []
    assert again.already_present == 3
    assert len(await store.list(limit=None)) == 3


async def test_reconcile_since_leaves_older_calls_alone(store: TicketStore, cdr: Path) -> None:
    report = await reconcile(store, cdr, since=datetime(2026, 11, 27, 6, 45, tzinfo=UTC))
    assert len(report.created) == 1
    assert await store.by_linkedid("1795761300.9") is not None
    assert await store.by_linkedid("1795761092.0") is None


async def test_reconcile_of_a_missing_file_does_nothing(store: TicketStore, tmp_path: Path) -> None:
    report = await reconcile(store, tmp_path / "none.csv")
    assert report.created == [] and report.already_present == 0


async def test_reconcile_wants_an_aware_since(store: TicketStore, cdr: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await reconcile(store, cdr, since=datetime(2026, 11, 27))


async def test_a_call_the_store_refuses_is_reported_not_raised(
    store: TicketStore, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(_row(uniqueid="6.1") + "\n" + _row(uniqueid="6.2") + "\n")

    class Refusing:
        """The real store, refusing the first call's ticket as the database might."""

        def __init__(self, inner: TicketStore) -> None:
            self.inner = inner
            self.by_linkedid = inner.by_linkedid
            self.update_call = inner.update_call
            self.note = inner.note

        async def open_call(self, linkedid: str, **fields: Any) -> str:
            from ivr.tickets.errors import InvalidTicketUpdate

            if linkedid == "6.1":
                raise InvalidTicketUpdate("line: too long")
            return await self.inner.open_call(linkedid, **fields)

    report = await reconcile(Refusing(store), path)
    assert report.failed == ["6.1"]
    assert len(report.created) == 1


async def test_a_ticket_the_controller_never_saw_end_is_completed_from_the_records(
    store: TicketStore, cdr: Path
) -> None:
    # The controller opened the fallback call's ticket, then died: no end, no agent.
    lost = await store.open_call("1795761092.0", line="12345", caller="13800001111",
                                 ivr_path=["hotline_12345"])
    report = await reconcile(store, cdr, now=NOW)

    assert report.completed == [lost]
    ticket = await store.get(lost)
    assert ticket.ended_at == datetime(2026, 11, 27, 6, 31, 35, tzinfo=UTC)
    assert ticket.agent == "1001"
    assert ticket.outcome == "fallback"
    assert ticket.talk_seconds == 3
    assert ticket.ivr_path == ["hotline_12345"]  # what the controller wrote stays
    assert ticket.variables["reconciled"] == "cdr"
    history = await store.history(lost)
    assert "controller lost the call" in (history[-1].note or "")
    # Once complete it is left alone.
    again = await reconcile(store, cdr, now=NOW)
    assert again.completed == [] and again.created == []


async def test_an_unfinished_ticket_of_a_call_just_ended_is_left_to_the_controller(
    store: TicketStore, cdr: Path
) -> None:
    lost = await store.open_call("1795761092.0", line="12345", caller="13800001111")
    just_after_the_end = datetime(2026, 11, 27, 6, 31, 40, tzinfo=UTC)
    report = await reconcile(store, cdr, now=just_after_the_end)
    assert report.completed == []
    assert (await store.get(lost)).ended_at is None
    # Without ``now`` nothing is ever completed.
    assert (await reconcile(store, cdr)).completed == []


async def test_completion_keeps_the_agent_the_ticket_knows(store: TicketStore, cdr: Path) -> None:
    lost = await store.open_call("1795761200.7", line="12345", caller="13800001111")
    answered = datetime(2026, 11, 27, 6, 40, 20, tzinfo=UTC)
    await store.update_call("1795761200.7", agent="1004", answered_at=answered,
                            outcome="answered")
    await reconcile(store, cdr, now=NOW)
    ticket = await store.get(lost)
    assert ticket.agent == "1004" and ticket.answered_at == answered
    assert ticket.outcome == "answered"
    assert ticket.ended_at == datetime(2026, 11, 27, 6, 45, tzinfo=UTC)


# -- following the file -----------------------------------------------------------------------


def test_the_follower_reads_the_whole_file_once_then_only_what_was_appended(
    tmp_path: Path,
) -> None:
    """Re-reading the whole file every cycle cost a ticket read per call of the file's life:
    the controller follows it instead."""
    cdr = tmp_path / "Master.csv"
    cdr.write_text(ASTERISK_ROWS, encoding="utf-8")
    follower = CdrFollower(cdr)
    assert [c.linkedid for c in follower.new_calls(NOW)] == ["1795761475.0", "1795761592.0"]
    assert follower.new_calls(NOW) == []
    later = _row(uniqueid="1795762000.0", start="2026-11-27 06:50:00", end="2026-11-27 06:51:00")
    with cdr.open("a", encoding="utf-8") as out:
        out.write(later + "\n" + _row(uniqueid="1795762100.0")[:40])  # the next line half-written
    assert [c.linkedid for c in follower.new_calls(NOW)] == ["1795762000.0"]
    with cdr.open("a", encoding="utf-8") as out:
        out.write(_row(uniqueid="1795762100.0")[40:] + "\n")
    assert [c.linkedid for c in follower.new_calls(NOW)] == ["1795762100.0"]


def test_the_follower_merges_a_calls_later_rows_and_reads_a_rotated_file_anew(
    tmp_path: Path,
) -> None:
    cdr = tmp_path / "Master.csv"
    first = _row(uniqueid="1795761092.0", dstchannel="PJSIP/1001-00000001",
                 disposition="NO ANSWER", end="2026-11-27 06:31:40")  # fmt: skip
    cdr.write_text(first + "\n", encoding="utf-8")
    follower = CdrFollower(cdr)
    assert [c.rows for c in follower.new_calls(RIGHT_AFTER)] == [1]
    second = _row(uniqueid="1795761092.0", dstchannel="PJSIP/1002-00000002",
                  end="2026-11-27 06:32:40")  # fmt: skip
    with cdr.open("a", encoding="utf-8") as out:
        out.write(second + "\nnot,a,row\n")
    (call,) = follower.new_calls(RIGHT_AFTER)
    assert (call.rows, call.agent, call.disposition) == (2, "1002", "ANSWERED")
    # Rows are kept for ROWS_KEPT_SECONDS only: a row of that call much later stands alone.
    with cdr.open("a", encoding="utf-8") as out:
        out.write(second + "\n")
    (alone,) = follower.new_calls(RIGHT_AFTER + timedelta(hours=1))
    assert alone.rows == 1
    rotated = tmp_path / "rotated.csv"
    rotated.write_text(ASTERISK_ROWS, encoding="utf-8")
    rotated.replace(cdr)
    assert len(follower.new_calls(RIGHT_AFTER)) == 2
