"""Tickets for the calls the controller never saw, from Asterisk's own call records.

When the controller is unreachable the dialplan still puts the caller through to the fallback
queue (and marks the call record with ``CDR(userfield)=fallback``), and a crash can lose a
ticket write. Asterisk's cdr_csv file (``var/pbx/log/cdr-csv/Master.csv``, with
``usegmtime``, ``loguniqueid`` and ``loguserfield``) still has every call, so after an outage
each citizen call found there without a ticket gets one: no call goes unrecorded.

The columns are accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
start, answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield (plus
peeraccount, linkedid, sequence when ``newcdrcolumns`` is on). There is no linkedid column
otherwise, but a citizen's call starts with the citizen's own channel, whose uniqueid IS the
call's linkedid. A call can have several rows (one per CDR fork: each agent rung by a queue,
say), so rows are grouped by uniqueid.

Caveat of the source: the dialplan answers the caller's channel at once (before the menu), so
the CDR's answer time is when the PBX answered, not when an agent did. A reconciled ticket's
``answered_at`` is therefore the PBX's answer of a call an agent took, and its wait time a
lower bound.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog

from ivr.home import Home
from ivr.spool import CallStore
from ivr.tickets.errors import TicketError
from ivr.tickets.model import Ticket
from ivr.tickets.store import SYSTEM_ACTOR
from ivr.yamlsource import Problem

_log = structlog.get_logger(__name__)

#: The dialplan context citizens' calls enter (pjsip.conf's endpoint context).
CITIZENS_CONTEXT = "from-citizens"
#: What the dialplan writes into CDR(userfield) when it took the fallback queue.
FALLBACK_USERFIELD = "fallback"
#: Ticket outcome of a call that took the fallback queue (see Ticket.outcome).
FALLBACK_OUTCOME = "fallback"
AGENT_OUTCOME = "agent"
ANSWERED = "ANSWERED"
#: Marks, in the ticket's variables, a ticket that reconcile opened.
RECONCILED_VARIABLE = "reconciled"
RECONCILED_FROM_CDR = "cdr"
DISPOSITION_VARIABLE = "cdr_disposition"

CDR_COLUMNS: tuple[str, ...] = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield",
)  # fmt: skip
#: Appended by cdr_csv's ``newcdrcolumns = yes``.
NEW_CDR_COLUMNS: tuple[str, ...] = ("peeraccount", "linkedid", "sequence")
_CDR_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: "name" <number>, as Asterisk merges a caller ID. A stray closing quote after it is
#: allowed: an over-quoted field ("""""" <138...>") reads back with one.
_CLID = re.compile(r'^\s*"(?P<name>.*)"\s*<(?P<number>[^>]*)>\s*"?\s*$')
#: PJSIP/1001-00000001, or Local/1001@agents-00000003;1 for a queue member behind Local.
_AGENT_CHANNEL = re.compile(r"^[A-Za-z0-9_]+/(?P<resource>.+?)-[0-9a-fA-F]+(?:;\d+)?$")


def default_cdr_path(home: Home) -> Path:
    """Where the home's Asterisk writes its cdr_csv records."""
    return home.var_dir / "pbx" / "log" / "cdr-csv" / "Master.csv"


@dataclass(frozen=True)
class CdrRow:
    """One line of Master.csv, with its times parsed (aware, UTC)."""

    line_number: int
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    start: datetime
    answer: datetime | None
    end: datetime | None
    disposition: str
    uniqueid: str
    userfield: str
    linkedid: str | None = None


@dataclass(frozen=True)
class CdrCall:
    """One citizen's call: the rows of its first channel, merged."""

    linkedid: str
    line: str
    caller: str | None
    caller_name: str | None
    channel: str | None
    start: datetime
    #: When the PBX answered the caller's channel (see the module's caveat).
    answer: datetime | None
    end: datetime | None
    #: The agent id (PJSIP/<agent id>-xxxx) of the row an agent answered, if any.
    agent: str | None
    #: ANSWERED when any row was, else the last row's (NO ANSWER, BUSY, FAILED...).
    disposition: str
    fallback: bool
    rows: int = 1

    @property
    def agent_answered(self) -> bool:
        return self.agent is not None


def _time(text: str, column: str) -> datetime | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        parsed = datetime.strptime(cleaned, _CDR_TIME_FORMAT)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(cleaned)
        except ValueError:
            raise ValueError(
                f"{column} {text!r} is not a time such as 2026-11-27 06:31:32"
            ) from None
    # usegmtime = yes: the file's times are UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _row(values: Sequence[str], line_number: int) -> CdrRow:
    if len(values) == len(CDR_COLUMNS):
        named = dict(zip(CDR_COLUMNS, values, strict=True))
    elif len(values) == len(CDR_COLUMNS) + len(NEW_CDR_COLUMNS):
        named = dict(zip((*CDR_COLUMNS, *NEW_CDR_COLUMNS), values, strict=True))
    else:
        raise ValueError(
            f"{len(values)} columns, expected {len(CDR_COLUMNS)} (cdr_csv with loguniqueid "
            f"and loguserfield) or {len(CDR_COLUMNS) + len(NEW_CDR_COLUMNS)}"
        )
    if not named["uniqueid"].strip():
        raise ValueError("no uniqueid (is loguniqueid = yes in cdr.conf?)")
    start = _time(named["start"], "start")
    if start is None:
        raise ValueError("no start time")
    return CdrRow(
        line_number=line_number,
        src=named["src"].strip(),
        dst=named["dst"].strip(),
        dcontext=named["dcontext"].strip(),
        clid=named["clid"],
        channel=named["channel"].strip(),
        dstchannel=named["dstchannel"].strip(),
        start=start,
        answer=_time(named["answer"], "answer"),
        end=_time(named["end"], "end"),
        disposition=named["disposition"].strip().upper(),
        uniqueid=named["uniqueid"].strip(),
        userfield=named["userfield"].strip(),
        linkedid=named.get("linkedid", "").strip() or None,
    )


def caller_name_of(clid: str, caller: str) -> str | None:
    """The name part of a merged caller ID (``"张三" <138...>``); None when there is none."""
    match = _CLID.match(clid)
    if match:
        return match.group("name").strip() or None
    text = clid.strip()
    # Asterisk writes the number alone when the caller ID has no name.
    return None if not text or text == caller or text.isdigit() else text


def agent_of(dstchannel: str) -> str | None:
    """The agent id of an agent's channel: PJSIP/1001-00000001 -> 1001."""
    match = _AGENT_CHANNEL.match(dstchannel.strip())
    if not match:
        return None
    resource = match.group("resource")
    return resource.split("@", 1)[0] or None


def _is_fallback(userfield: str) -> bool:
    return FALLBACK_USERFIELD in {part.strip() for part in re.split(r"[;,|]", userfield)}


def _merge(rows: Sequence[CdrRow]) -> CdrCall:
    first = rows[0]
    answered = sorted(
        (row for row in rows if row.disposition == ANSWERED and agent_of(row.dstchannel)),
        key=lambda row: (row.answer or row.start, row.line_number),
    )
    answers = [row.answer for row in rows if row.answer is not None]
    ends = [row.end for row in rows if row.end is not None]
    any_answered = any(row.disposition == ANSWERED for row in rows)
    return CdrCall(
        linkedid=first.linkedid or first.uniqueid,
        line=first.dst,
        caller=first.src or None,
        caller_name=caller_name_of(first.clid, first.src),
        channel=first.channel or None,
        start=min(row.start for row in rows),
        answer=(answered[0].answer if answered else None) or (min(answers) if answers else None),
        end=max(ends) if ends else None,
        agent=agent_of(answered[0].dstchannel) if answered else None,
        disposition=ANSWERED if any_answered else rows[-1].disposition,
        fallback=any(_is_fallback(row.userfield) for row in rows),
        rows=len(rows),
    )


def _records(text: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, exc
            continue
        if values:
            yield reader.line_num, values


def _citizen_rows(
    text: str, source: str, first_line: int = 1
) -> tuple[list[CdrRow], list[Problem]]:
    """The rows of citizens' calls in cdr_csv ``text`` whose first line is ``first_line`` of
    the file (rows of other contexts, such as agents' own calls, are left out)."""
    problems: list[Problem] = []
    rows: list[CdrRow] = []
    for line_number, values in _records(text):
        where = first_line - 1 + line_number
        if isinstance(values, csv.Error):
            problems.append(Problem(source, where, f"unreadable row: {values}"))
            continue
        try:
            row = _row(values, where)
        except ValueError as exc:
            problems.append(Problem(source, where, str(exc)))
            continue
        if row.dcontext == CITIZENS_CONTEXT:
            rows.append(row)
    return rows, problems


def _calls_of(rows: Sequence[CdrRow]) -> list[CdrCall]:
    by_uniqueid: dict[str, list[CdrRow]] = {}
    for row in rows:
        by_uniqueid.setdefault(row.uniqueid, []).append(row)
    calls = [_merge(rows) for rows in by_uniqueid.values()]
    calls.sort(key=lambda call: (call.start, call.linkedid))
    return calls


def parse_cdr_text(text: str, source: str = "Master.csv") -> tuple[list[CdrCall], list[Problem]]:
    """The citizens' calls in cdr_csv ``text``, in the order they started, and a Problem per
    malformed row."""
    rows, problems = _citizen_rows(text, source)
    return _calls_of(rows), problems


def parse_cdr_csv(path: Path) -> list[CdrCall]:
    """The citizens' calls of a cdr_csv file; malformed rows are logged and skipped, and a
    missing file (no call yet) has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _log.info("cdr.missing", path=str(path))
        return []
    # A caller name cut by a bad encoding must not cost the whole call.
    calls, problems = parse_cdr_text(data.decode("utf-8", errors="replace"), str(path))
    for problem in problems:
        _log.warning("cdr.malformed_row", problem=str(problem))
    return calls


class CdrFollower:
    """Master.csv as the controller follows it: the first read takes the whole file (the
    calls of an outage before this start), each later one only the lines Asterisk appended
    since. Reading the whole file every cycle cost the controller one ticket read per call
    of the file's life, twice a minute: at a soak's 9.6 calls/s the loop lagged and calls
    failed within 20 minutes. A file that shrank or was replaced (rotation) is read anew.

    Rows of a call can come in separate writes (one per CDR fork), so the rows of the calls
    that ended in the last ROWS_KEPT_SECONDS are kept and merged with their later ones.
    Asterisk writes a call's rows together at its hang-up; two minutes covers a slow
    write, and ten minutes of a busy hotline's rows made megabytes the soak saw."""

    ROWS_KEPT_SECONDS = 120.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._lines = 0
        self._file_id: tuple[int, int] | None = None
        self._recent: dict[str, list[CdrRow]] = {}

    def new_calls(self, now: datetime) -> list[CdrCall]:
        """The calls with rows appended since the last read, merged with their earlier rows."""
        try:
            with self.path.open("rb") as cdr:
                status = os.fstat(cdr.fileno())
                file_id = (status.st_dev, status.st_ino)
                if file_id != self._file_id or status.st_size < self._offset:
                    self._file_id, self._offset, self._lines = file_id, 0, 0
                    self._recent.clear()
                cdr.seek(self._offset)
                appended = cdr.read()
        except FileNotFoundError:
            return []
        # Only whole lines: Asterisk may be half-way through writing the last one.
        complete = appended[: appended.rfind(b"\n") + 1]
        if not complete:
            return []
        self._offset += len(complete)
        first_line = self._lines + 1
        self._lines += complete.count(b"\n")
        text = complete.decode("utf-8", errors="replace")
        rows, problems = _citizen_rows(text, str(self.path), first_line)
        for problem in problems:
            _log.warning("cdr.malformed_row", problem=str(problem))
        self._forget_before(now - timedelta(seconds=self.ROWS_KEPT_SECONDS))
        touched: dict[str, list[CdrRow]] = {}
        for row in rows:
            kept = self._recent.setdefault(row.uniqueid, [])
            kept.append(row)
            touched[row.uniqueid] = kept
        return _calls_of([row for kept in touched.values() for row in kept])

    def _forget_before(self, moment: datetime) -> None:
        self._recent = {
            uniqueid: rows
            for uniqueid, rows in self._recent.items()
            if max(row.end or row.start for row in rows) >= moment
        }


# -- tickets from calls ---------------------------------------------------------------------


class ReconcileStore(CallStore, Protocol):
    """What reconcile needs of ivr.tickets.store.TicketStore: the call store the spool
    writes to, plus notes for the ticket's history."""

    async def note(
        self, ticket_id: str | int, text: str, *, actor: str, now: datetime | None = None
    ) -> Ticket: ...


@dataclass
class ReconcileReport:
    #: Ids of the tickets opened from call records.
    created: list[str] = field(default_factory=list)
    #: Citizen calls that already had a ticket.
    already_present: int = 0
    #: Ids of tickets the controller opened but never saw end (it died mid-call), completed
    #: from the call records.
    completed: list[str] = field(default_factory=list)
    #: Linkedids of calls whose ticket could not be written (logged).
    failed: list[str] = field(default_factory=list)
    #: Calls with an unfinished ticket that ended too recently to judge (the controller may
    #: still write their end): to look at again on a later run.
    unsettled: list[CdrCall] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "created": list(self.created),
            "already_present": self.already_present,
            "completed": list(self.completed),
            "failed": list(self.failed),
        }


def ticket_fields(call: CdrCall) -> dict[str, Any]:
    """The call data of a ticket for ``call`` (open_call's keyword arguments)."""
    fields: dict[str, Any] = {
        "line": call.line or None,
        "caller": call.caller,
        "caller_name": call.caller_name,
        "channel": call.channel,
        "created_at": call.start,
        "ended_at": call.end,
        "variables": {
            RECONCILED_VARIABLE: RECONCILED_FROM_CDR,
            DISPOSITION_VARIABLE: call.disposition,
        },
    }
    if call.agent_answered:
        fields["agent"] = call.agent
        fields["answered_at"] = call.answer
    if call.fallback:
        fields["outcome"] = FALLBACK_OUTCOME
    elif call.agent_answered:
        fields["outcome"] = AGENT_OUTCOME
    return fields


def _note(call: CdrCall) -> str:
    how = "took the fallback queue (controller unreachable)" if call.fallback else "had no ticket"
    who = f"answered by agent {call.agent}" if call.agent else "not answered by an agent"
    return f"opened from the PBX call records: the call {how}; {who} ({call.disposition})"


#: How long after a call's end its ticket may still be finished by a live controller (its
#: hang-up write races the call record); only older unfinished tickets are completed here.
SETTLE_SECONDS = 10.0


def completion_fields(ticket: Ticket, call: CdrCall) -> dict[str, Any]:
    """What the call records add to a ticket whose call the controller never saw end: the end,
    and who answered when the ticket does not know. What the ticket has is never overwritten."""
    fields: dict[str, Any] = {"ended_at": call.end}
    if call.agent_answered and ticket.agent is None:
        fields["agent"] = call.agent
        fields["answered_at"] = call.answer
    if ticket.outcome is None or call.fallback:
        if call.fallback:
            fields["outcome"] = FALLBACK_OUTCOME
        elif call.agent_answered:
            fields["outcome"] = AGENT_OUTCOME
    fields["variables"] = {RECONCILED_VARIABLE: RECONCILED_FROM_CDR,
                           DISPOSITION_VARIABLE: call.disposition}
    return fields


async def _complete_call(
    store: ReconcileStore, ticket: Ticket, call: CdrCall, report: ReconcileReport
) -> None:
    await store.update_call(call.linkedid, **completion_fields(ticket, call))
    await store.note(ticket.id, _completion_note(call), actor=SYSTEM_ACTOR)
    report.completed.append(ticket.id)


def _completion_note(call: CdrCall) -> str:
    how = "went on in the fallback queue" if call.fallback else "ended"
    who = f"answered by agent {call.agent}" if call.agent else "not answered by an agent"
    return (f"completed from the PBX call records: the controller lost the call, which {how}; "
            f"{who} ({call.disposition})")


async def _reconcile_call(
    store: ReconcileStore,
    call: CdrCall,
    report: ReconcileReport,
    settled_before: datetime | None,
) -> None:
    existing = await store.by_linkedid(call.linkedid)
    if existing is not None:
        settled = (call.end is not None and settled_before is not None
                   and call.end <= settled_before)
        if existing.ended_at is None and settled:
            await _complete_call(store, existing, call, report)
        else:
            report.already_present += 1
            if existing.ended_at is None:
                report.unsettled.append(call)
        return
    fields = ticket_fields(call)
    line = fields.pop("line")
    ticket_id = await store.open_call(call.linkedid, line=line, **fields)
    # The controller (a drained spool, say) may have opened it meanwhile: its data wins.
    ticket = await store.by_linkedid(call.linkedid)
    if ticket is None or ticket.variables.get(RECONCILED_VARIABLE) != RECONCILED_FROM_CDR:
        report.already_present += 1
        return
    # No fields: lets the store fill the wait and talk seconds from the times.
    await store.update_call(call.linkedid)
    await store.note(ticket_id, _note(call), actor=SYSTEM_ACTOR)
    report.created.append(ticket_id)


async def reconcile_calls(
    store: ReconcileStore,
    calls: Sequence[CdrCall],
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """A ticket for each of ``calls`` that has none (started at ``since`` or later); with
    ``now``, tickets left unfinished by a controller that died mid-call are completed once
    their call ended SETTLE_SECONDS before it."""
    report = ReconcileReport()
    settled_before = now - timedelta(seconds=SETTLE_SECONDS) if now is not None else None
    for call in calls:
        if since is not None and call.start < since:
            continue
        try:
            await _reconcile_call(store, call, report, settled_before)
        except TicketError as exc:
            _log.error("reconcile.call_failed", linkedid=call.linkedid, error=str(exc))
            report.failed.append(call.linkedid)
    if report.created:
        _log.info("reconcile.created", count=len(report.created), tickets=report.created)
    if report.completed:
        _log.info("reconcile.completed", count=len(report.completed), tickets=report.completed)
    return report


async def reconcile(
    store: ReconcileStore,
    cdr_path: Path,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """Open a ticket for every citizen call of the cdr_csv file that has none. Idempotent:
    a second run finds them all present. Drain the ticket spool first, so that calls whose
    writes are still spooled get the controller's ticket rather than a reconciled one."""
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    calls = await asyncio.to_thread(parse_cdr_csv, cdr_path)
    return await reconcile_calls(store, calls, since=since, now=now)
