"""A durable spool for ticket writes, so that a database outage never loses a call's ticket.

``SpoolingTicketWriter`` stands in front of the ticket store with the call controller's
writing methods. A write that cannot reach the database (a connection refused or lost, a
database file gone, a write that hangs) is appended to a JSON-lines file under
``<home>/var/spool/``, fsynced before the controller hears back, and replayed in order once the
database answers again. While anything is spooled every write goes to the spool too, so the
writes of one call always reach the store in the order they were made.

Replay must be idempotent: a process can die after the store applied a record and before the
record left the spool, and the record is then applied again. ``open_call`` is (it is keyed on
the linkedid) and so is ``update_call`` (it sets fields; ``variables`` are merged). Appends are
not, so the writer spools an append as the whole list it results in: it keeps, for each live
call, the IVR path and route hops it knows the ticket holds, and spools
``update_call(ivr_path=<all nodes>)`` rather than "add these nodes". Only when it does not know
the list (its memory of the call was lost) does it spool the plain append.

The ticket id: the store numbers tickets, so a spooled ``open_call`` cannot know its id. Every
writing method returns the ticket id when the store answered and None when the write was
spooled; the controller keys everything on the linkedid anyway and asks ``ticket_id_of(linkedid)``
when it needs the id (to name a recording or tell the citizen), which answers once the ticket
is in the store.

Several processes may share one spool file: appends and compactions hold an exclusive
``flock`` on ``<spool>.lock``, and one drain at a time holds ``<spool>.drain.lock``. Records are
removed by their id, never by position. A record the store refuses for good (an unknown ticket,
a value it rejects) is moved to ``<spool>.rejected`` with the reason, for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy.exc
import structlog

from ivr.home import Home
from ivr.tickets.errors import InvalidTicketUpdate
from ivr.tickets.model import Ticket
from ivr.tickets.store import CALL_FIELDS, StoreNotStarted, check_call_fields, utc_now

_log = structlog.get_logger(__name__)

OPEN_CALL = "open_call"
UPDATE_CALL = "update_call"
APPEND_PATH = "append_path"
APPEND_ROUTE_HOP = "append_route_hop"
OPS: frozenset[str] = frozenset({OPEN_CALL, UPDATE_CALL, APPEND_PATH, APPEND_ROUTE_HOP})

#: Fields stored as ISO-8601 text in the spool and turned back into datetimes on replay.
TIME_FIELDS: frozenset[str] = frozenset(
    {name for name, kinds in CALL_FIELDS.items() if kinds == (datetime,)} | {"created_at"}
)
#: Records one drain round applies before it removes them from the file.
DRAIN_CHUNK = 256
DEFAULT_RETRY_SECONDS = 3.0
#: A store write that takes longer is taken for an outage (and spooled).
DEFAULT_WRITE_TIMEOUT = 5.0
#: Calls whose IVR path and route hops the writer remembers (the live ones, and then some).
REMEMBERED_CALLS = 10_000


def default_spool_path(home: Home, name: str = "tickets") -> Path:
    """``<home>/var/spool/<name>.jsonl``; give each controller process its own name when
    they do not share one (sharing is safe, but one drainer at a time)."""
    return home.var_dir / "spool" / f"{name}.jsonl"


# -- what counts as an outage ---------------------------------------------------------------


def _asyncpg_outage_errors() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is installed with the project
        return ()
    return (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.OperatorInterventionError,
    )


_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    # A store closed before the writer (at shutdown, say): the write waits for the next start.
    StoreNotStarted,
    OSError,
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
    *_asyncpg_outage_errors(),
)


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached now (worth spooling and
    retrying), as opposed to a write it refuses (a bad value, an unknown ticket)."""
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated


class HistoryReader(Protocol):
    async def caller_history(self, caller: str, limit: int = 5) -> list[dict[str, Any]]: ...
    async def caller_location(self, caller: str) -> str | None: ...


_Read = TypeVar("_Read")
#: A read a live call waits for; past it the call goes on without the answer.
DEFAULT_READ_TIMEOUT = 1.0


@dataclass
class OutageTolerantHistory:
    """The caller's history as a live call reads it (routing by earlier tickets, the agent's
    screen pop): during a database outage, or when a read hangs, the call goes on as for a
    caller with no history, instead of failing into the dialplan's fallback."""

    store: HistoryReader
    timeout: float = DEFAULT_READ_TIMEOUT

    async def caller_history(self, caller: str, limit: int = 5) -> list[dict[str, Any]]:
        found = await self._read(self.store.caller_history(caller, limit), "caller_history")
        return found if found is not None else []

    async def caller_location(self, caller: str) -> str | None:
        return await self._read(self.store.caller_location(caller), "caller_location")

    async def _read(self, read: Awaitable[_Read], what: str) -> _Read | None:
        try:
            return await asyncio.wait_for(read, self.timeout)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            _log.warning("history.unavailable", read=what, error=f"{type(exc).__name__}: {exc}")
            return None


# -- records --------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidTicketUpdate(f"naive datetime {value.isoformat()}: give a timezone")
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be spooled as JSON")


def _decode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    decoded = dict(fields)
    for name in TIME_FIELDS & decoded.keys():
        if isinstance(decoded[name], str):
            decoded[name] = datetime.fromisoformat(decoded[name])
    return decoded


@dataclass(frozen=True)
class SpoolRecord:
    id: str
    op: str
    linkedid: str
    fields: dict[str, Any]
    spooled_at: str

    def to_line(self) -> str:
        data = {
            "id": self.id,
            "op": self.op,
            "linkedid": self.linkedid,
            "fields": self.fields,
            "spooled_at": self.spooled_at,
        }
        return json.dumps(data, ensure_ascii=False, default=_json_default) + "\n"

    @classmethod
    def from_line(cls, line: str) -> SpoolRecord:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        record = cls(
            id=str(data["id"]),
            op=str(data["op"]),
            linkedid=str(data["linkedid"]),
            fields=_decode_fields(data["fields"]),
            spooled_at=str(data.get("spooled_at", "")),
        )
        if record.op not in OPS:
            raise ValueError(f"unknown op {record.op!r}")
        return record


@dataclass(frozen=True)
class _Entry:
    """One line of the spool file: a record, or garbage (a torn or corrupt line)."""

    line: str
    record: SpoolRecord | None
    problem: str | None = None


class CallWriter(Protocol):
    """The store's methods that the controller writes a call with (TicketStore has them)."""

    async def open_call(
        self,
        linkedid: str,
        *,
        line: str | None = None,
        caller: str | None = None,
        caller_name: str | None = None,
        channel: str | None = None,
        sip_call_id: str | None = None,
        created_at: datetime | None = None,
        **extra: Any,
    ) -> str: ...

    async def update_call(self, linkedid: str, **fields: Any) -> str: ...

    async def append_path(self, linkedid: str, node_ids: Sequence[str]) -> str: ...

    async def append_route_hop(
        self,
        linkedid: str,
        *,
        unit: str,
        level: str | None = None,
        queue: str | None = None,
        outcome: str | None = None,
    ) -> str: ...


class CallStore(CallWriter, Protocol):
    async def by_linkedid(self, linkedid: str) -> Ticket | None: ...


async def apply_record(store: CallWriter, record: SpoolRecord) -> str:
    """Replay one spooled write against the store; the ticket id."""
    fields = dict(record.fields)
    if record.op == OPEN_CALL:
        return await store.open_call(record.linkedid, **fields)
    if record.op == UPDATE_CALL:
        return await store.update_call(record.linkedid, **fields)
    if record.op == APPEND_PATH:
        return await store.append_path(record.linkedid, [str(n) for n in fields["nodes"]])
    if record.op == APPEND_ROUTE_HOP:
        return await store.append_route_hop(record.linkedid, **fields)
    raise ValueError(f"unknown op {record.op!r}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TicketSpool:
    """The append-only journal of ticket writes that have not reached the store yet."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.drain_lock_path = path.with_name(path.name + ".drain.lock")
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._clock = clock
        self._draining = asyncio.Lock()

    # -- file level (blocking; the writer calls these in a thread) --------------------------

    @contextlib.contextmanager
    def _locked(self, lock_path: Path, *, wait: bool = True) -> Iterator[bool]:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the flock

    def has_pending(self) -> bool:
        """Whether anything waits in the spool (one stat: cheap enough for every write)."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, op: str, linkedid: str, fields: Mapping[str, Any]) -> SpoolRecord:
        """Write one record and fsync it: once this returns, the write survives a crash."""
        if op not in OPS:
            raise ValueError(f"unknown spool op {op!r}; ops: {', '.join(sorted(OPS))}")
        if not linkedid:
            raise InvalidTicketUpdate("linkedid: may not be empty")
        record = SpoolRecord(
            id=uuid.uuid4().hex,
            op=op,
            linkedid=linkedid,
            fields=dict(fields),
            spooled_at=self._clock().astimezone(UTC).isoformat(),
        )
        line = record.to_line()  # before the file is touched: a value JSON cannot hold fails
        with self._locked(self.lock_path):
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                size = os.fstat(fd).st_size
                # A writer that died mid-line left a torn tail: start on a line of our own.
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                data = ("\n" if torn else "") + line
                os.write(fd, data.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        return record

    def _read_entries(self) -> list[_Entry]:
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        entries: list[_Entry] = []
        for line in text.splitlines(keepends=True):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                # Only read under the lock, so no writer is mid-line: this one died there.
                entries.append(_Entry(line, None, "torn record (the writer died mid-write)"))
                continue
            try:
                entries.append(_Entry(line, SpoolRecord.from_line(line)))
            except (ValueError, KeyError, TypeError) as exc:
                entries.append(_Entry(line, None, f"unreadable record: {exc}"))
        return entries

    def records(self) -> list[SpoolRecord]:
        """The spooled records, oldest first (unreadable lines left out)."""
        with self._locked(self.lock_path):
            return [entry.record for entry in self._read_entries() if entry.record]

    def _reject(self, entries: Sequence[tuple[str, str]]) -> None:
        """Keep refused records (line, reason) for an operator in the .rejected file."""
        if not entries:
            return
        at = self._clock().astimezone(UTC).isoformat()
        text = "".join(
            json.dumps(
                {"rejected_at": at, "reason": reason, "line": line.rstrip("\n")}, ensure_ascii=False
            )
            + "\n"
            for line, reason in entries
        )
        fd = os.open(
            self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _take_chunk(self) -> list[SpoolRecord]:
        """The oldest records to replay; garbage lines in front of them go to .rejected."""
        with self._locked(self.lock_path):
            entries = self._read_entries()
            garbage = [(e.line, e.problem or "unreadable") for e in entries if e.record is None]
            if garbage:
                for line, reason in garbage:
                    _log.error(
                        "spool.unreadable_line",
                        spool=str(self.path),
                        reason=reason,
                        line=line[:200],
                    )
                self._reject(garbage)
                self._rewrite(set(), {line for line, _ in garbage})
            return [e.record for e in entries if e.record][:DRAIN_CHUNK]

    def _rewrite(self, done_ids: set[str], dropped_lines: set[str]) -> None:
        """Rewrite the spool without the given records and lines (call under the lock)."""
        kept = [
            entry.line
            for entry in self._read_entries()
            if entry.line not in dropped_lines
            and not (entry.record is not None and entry.record.id in done_ids)
        ]
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, "".join(kept).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_dir(self.path.parent)

    def _finish(self, done_ids: set[str], rejected: Sequence[tuple[SpoolRecord, str]]) -> None:
        with self._locked(self.lock_path):
            self._reject([(record.to_line(), reason) for record, reason in rejected])
            self._rewrite(done_ids | {record.id for record, _ in rejected}, set())

    # -- replay -----------------------------------------------------------------------------

    async def drain(self, store: CallWriter, *, seconds_per_write: float | None = None) -> int:
        """Replay the spooled records against ``store`` in order and remove those applied;
        the number applied. Stops at the first outage (the rest waits for the next drain).
        Calls are replayed side by side, each call's records in order. Returns 0 at once
        when another drain (of this or another process) is under way."""
        if self._draining.locked():
            return 0
        async with self._draining:
            with self._locked(self.drain_lock_path, wait=False) as mine:
                if not mine:
                    return 0
                applied = 0
                while True:
                    chunk = await asyncio.to_thread(self._take_chunk)
                    if not chunk:
                        return applied
                    done, rejected, blocked = await _replay(store, chunk, seconds_per_write)
                    await asyncio.to_thread(self._finish, done, rejected)
                    applied += len(done)
                    if blocked or not (done or rejected):
                        return applied


async def _replay(
    store: CallWriter, chunk: Sequence[SpoolRecord], seconds_per_write: float | None
) -> tuple[set[str], list[tuple[SpoolRecord, str]], bool]:
    """(ids applied, records refused with the reason, whether an outage stopped a call)."""
    calls: dict[str, list[SpoolRecord]] = {}
    for record in chunk:
        calls.setdefault(record.linkedid, []).append(record)
    done: set[str] = set()
    rejected: list[tuple[SpoolRecord, str]] = []
    blocked = False

    async def replay_call(records: Sequence[SpoolRecord]) -> None:
        nonlocal blocked
        for record in records:
            try:
                async with asyncio.timeout(seconds_per_write):
                    await apply_record(store, record)
            except Exception as exc:
                if is_database_outage(exc):
                    blocked = True
                    return  # this call's later records must wait for this one
                reason = f"{type(exc).__name__}: {exc}"
                _log.error(
                    "spool.record_rejected", linkedid=record.linkedid, op=record.op, reason=reason
                )
                rejected.append((record, reason))
                continue
            done.add(record.id)

    await asyncio.gather(*(replay_call(records) for records in calls.values()))
    return done, rejected, blocked


# -- the writer -----------------------------------------------------------------------------


@dataclass
class _CallMemory:
    """What the writer knows one call's ticket holds; None = not known."""

    ticket_id: str | None = None
    ivr_path: list[str] | None = field(default_factory=list)
    route_hops: list[dict[str, Any]] | None = field(default_factory=list)


class SpoolingTicketWriter:
    """The store's call-writing methods, spooling what the database cannot take now.

    ``await start()`` to run the background drain (every ``retry_seconds``) and
    ``await close()`` to stop it after a last drain. Returns of the writing methods: the
    ticket id, or None when the write went to the spool (see ``ticket_id_of``)."""

    def __init__(
        self,
        store: CallStore,
        spool: TicketSpool,
        *,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
        remembered_calls: int = REMEMBERED_CALLS,
    ) -> None:
        self.store = store
        self.spool = spool
        self.retry_seconds = retry_seconds
        self.write_timeout = write_timeout
        self._clock = clock
        self._remembered_calls = remembered_calls
        self._calls: OrderedDict[str, _CallMemory] = OrderedDict()
        self._drainer: asyncio.Task[None] | None = None

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain_loop(), name="ticket-spool-drain")

    async def close(self) -> None:
        """Stop the background drain and try once more to empty the spool."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        await self._drain_logged()

    async def __aenter__(self) -> SpoolingTicketWriter:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def drain(self) -> int:
        """Replay the spool now; the number of records applied."""
        return await self.spool.drain(self.store, seconds_per_write=self.write_timeout)

    async def _drain_logged(self) -> None:
        if not self.spool.has_pending():
            return
        try:
            applied = await self.drain()
        except Exception:
            _log.exception("spool.drain_failed", spool=str(self.spool.path))
            return
        if applied:
            _log.info("spool.drained", applied=applied, left=self.spool.has_pending())

    async def _drain_loop(self) -> None:
        while True:
            await self._drain_logged()
            await asyncio.sleep(self.retry_seconds)

    @property
    def spooling(self) -> bool:
        """Whether writes wait in the spool (and new ones therefore go there too)."""
        return self.spool.has_pending()

    # -- memory of live calls ---------------------------------------------------------------

    def _memory(self, linkedid: str) -> _CallMemory | None:
        memory = self._calls.get(linkedid)
        if memory is not None:
            self._calls.move_to_end(linkedid)
        return memory

    def _remember(self, linkedid: str, memory: _CallMemory) -> _CallMemory:
        self._calls[linkedid] = memory
        self._calls.move_to_end(linkedid)
        while len(self._calls) > self._remembered_calls:
            self._calls.popitem(last=False)
        return memory

    def forget_call(self, linkedid: str) -> None:
        """Drop the memory of an ended call: kept for every call a busy day brings, it made
        the controller grow. A write that still comes (AgentComplete's talk time) reads the
        store, as after a restart."""
        self._calls.pop(linkedid, None)

    async def _learn_existing(self, linkedid: str) -> _CallMemory:
        """What the store holds of a call just opened there (it may be a call that came back
        to the menu, with a path already)."""
        memory = _CallMemory(ivr_path=None, route_hops=None)
        try:
            async with asyncio.timeout(self.write_timeout):
                ticket = await self.store.by_linkedid(linkedid)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            return memory
        if ticket is not None:
            memory = _CallMemory(ticket.id, list(ticket.ivr_path), list(ticket.route_hops))
        return memory

    async def ticket_id_of(self, linkedid: str) -> str | None:
        """The call's ticket id, once the store has its ticket; None before (or while the
        database cannot be reached)."""
        memory = self._memory(linkedid)
        if memory is not None and memory.ticket_id is not None:
            return memory.ticket_id
        try:
            async with asyncio.timeout(self.write_timeout):
                ticket = await self.store.by_linkedid(linkedid)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            return None
        if ticket is None:
            return None
        if memory is not None:
            memory.ticket_id = ticket.id
        return ticket.id

    # -- writing ----------------------------------------------------------------------------

    async def _write(
        self,
        linkedid: str,
        direct: Callable[[], Awaitable[str]],
        spooled: tuple[str, Mapping[str, Any]],
    ) -> str | None:
        """``direct()`` against the store, unless the spool holds writes (which must go
        first) or the database is out; then the spooled record. The id, or None if spooled."""
        if not self.spool.has_pending():
            try:
                async with asyncio.timeout(self.write_timeout):
                    return await direct()
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                _log.warning(
                    "spool.database_out",
                    linkedid=linkedid,
                    op=spooled[0],
                    error=f"{type(exc).__name__}: {exc}",
                )
        op, fields = spooled
        await asyncio.to_thread(self.spool.append, op, linkedid, fields)
        return None

    async def open_call(
        self,
        linkedid: str,
        *,
        line: str | None = None,
        caller: str | None = None,
        caller_name: str | None = None,
        channel: str | None = None,
        sip_call_id: str | None = None,
        created_at: datetime | None = None,
        **extra: Any,
    ) -> str | None:
        """TicketStore.open_call, spooled if need be. The opening time is fixed now, so a
        replayed ticket is dated when the call came in."""
        if not linkedid:
            raise InvalidTicketUpdate("linkedid: may not be empty")
        fields = check_call_fields(
            {
                "line": line,
                "caller": caller,
                "caller_name": caller_name,
                "channel": channel,
                "sip_call_id": sip_call_id,
                **extra,
            }
        )
        opened = created_at or self._clock()
        if opened.tzinfo is None:
            raise InvalidTicketUpdate(f"created_at: naive datetime {opened.isoformat()}")
        ticket_id = await self._write(
            linkedid,
            lambda: self.store.open_call(linkedid, created_at=opened, **fields),
            (OPEN_CALL, {**fields, "created_at": opened}),
        )
        if ticket_id is not None:
            memory = self._memory(linkedid) or await self._learn_existing(linkedid)
            memory.ticket_id = ticket_id
        else:
            memory = self._memory(linkedid) or _CallMemory(
                ivr_path=list(fields.get("ivr_path", [])),
                route_hops=list(fields.get("route_hops", [])),
            )
        self._remember(linkedid, memory)
        return ticket_id

    def _note_written(
        self, linkedid: str, ticket_id: str | None, fields: Mapping[str, Any]
    ) -> None:
        memory = self._memory(linkedid)
        if memory is None:
            return
        if ticket_id is not None:
            memory.ticket_id = ticket_id
        if "ivr_path" in fields:
            memory.ivr_path = list(fields["ivr_path"])
        if "route_hops" in fields:
            memory.route_hops = list(fields["route_hops"])

    async def update_call(self, linkedid: str, **fields: Any) -> str | None:
        checked = check_call_fields(fields)
        ticket_id = await self._write(
            linkedid,
            lambda: self.store.update_call(linkedid, **checked),
            (UPDATE_CALL, checked),
        )
        self._note_written(linkedid, ticket_id, checked)
        return ticket_id

    async def append_path(self, linkedid: str, node_ids: Sequence[str]) -> str | None:
        nodes = [str(node) for node in node_ids]
        memory = self._memory(linkedid)
        if memory is not None and memory.ivr_path is not None:
            whole = [*memory.ivr_path, *nodes]
            spooled: tuple[str, Mapping[str, Any]] = (UPDATE_CALL, {"ivr_path": whole})
        else:
            spooled = (APPEND_PATH, {"nodes": nodes})
        ticket_id = await self._write(
            linkedid, lambda: self.store.append_path(linkedid, nodes), spooled
        )
        if memory is not None and memory.ivr_path is not None:
            self._note_written(linkedid, ticket_id, {"ivr_path": whole})
        else:
            self._note_written(linkedid, ticket_id, {})
        return ticket_id

    async def append_route_hop(
        self,
        linkedid: str,
        *,
        unit: str,
        level: str | None = None,
        queue: str | None = None,
        outcome: str | None = None,
    ) -> str | None:
        hop = {"unit": unit, "level": level, "queue": queue, "outcome": outcome}
        memory = self._memory(linkedid)
        if memory is not None and memory.route_hops is not None:
            hops = [*memory.route_hops, hop]
            spooled: tuple[str, Mapping[str, Any]] = (UPDATE_CALL, {"route_hops": hops})
        else:
            spooled = (APPEND_ROUTE_HOP, hop)
        ticket_id = await self._write(
            linkedid,
            lambda: self.store.append_route_hop(
                linkedid, unit=unit, level=level, queue=queue, outcome=outcome
            ),
            spooled,
        )
        if memory is not None and memory.route_hops is not None:
            self._note_written(linkedid, ticket_id, {"route_hops": hops})
        else:
            self._note_written(linkedid, ticket_id, {})
        return ticket_id
