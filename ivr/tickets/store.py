"""Tickets in SQLite or PostgreSQL: one ticket per call (keyed by Asterisk's linkedid), its
call data as the controller learns it, and the lifecycle actions with their audit rows.

Every write goes through ONE writer task fed by an asyncio queue. On SQLite that is what keeps
50+ simultaneous calls from ever meeting "database is locked": there is only one writer in the
process, it takes ``BEGIN IMMEDIATE`` (so another process, such as the ``ivr tickets`` CLI,
waits on the busy timeout instead of failing half-way), and it commits whatever jobs queued up
meanwhile in one transaction (one fsync for many calls under ``synchronous=FULL``). Reads use
their own connections. PostgreSQL takes the same path; there the statements also hold up
against other controller processes (``ON CONFLICT DO NOTHING`` on linkedid, row locks).

The writer task is also where a durable spool will sit: a job that cannot reach the database
will be written to a local journal there and replayed, so the controller never has to know.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Table,
    and_,
    case,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.elements import ColumnElement

from ivr.tickets.deadlines import DEFAULT_POLICY, DeadlinePolicy
from ivr.tickets.errors import InvalidTicketUpdate, TicketError, UnknownTicket
from ivr.tickets.lifecycle import (
    FINAL_STATUSES,
    RUNNING_STATUSES,
    Action,
    OutboundKind,
    Rating,
    Status,
    check_merge,
    find_overdue,
    next_status,
    parse_rating,
)
from ivr.tickets.model import AuditEntry, Ticket, format_ticket_id

R = TypeVar("R")
WriteJob = Callable[[AsyncSession], Awaitable[R]]

#: Who the audit trail names for what the call controller itself does.
CALL_ACTOR = "ivr"
SYSTEM_ACTOR = "system"
#: Page cache of each SQLite reader connection (the writer keeps SQLite's default 2 MB).
SQLITE_READER_CACHE_KIB = 256
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Most jobs the writer commits in one transaction.
WRITE_BATCH_LIMIT = 64
#: Most ids one get_many statement asks for.
_GET_MANY_SLICE = 500

_TEXT = (str,)
_TIME = (datetime,)
_NUMBER = (int, float)
#: What the controller may set with open_call(**extra) / update_call, and the accepted types.
CALL_FIELDS: Mapping[str, tuple[type, ...]] = {
    "line": _TEXT,
    "caller": _TEXT,
    "caller_name": _TEXT,
    "channel": _TEXT,
    "sip_call_id": _TEXT,
    "category": _TEXT,
    "ivr_path": (list,),
    "unit": _TEXT,
    "level": _TEXT,
    "agent": _TEXT,
    "emergency": (bool,),
    "transferred_to": _TEXT,
    "recording": _TEXT,
    "answered_at": _TIME,
    "ended_at": _TIME,
    "wait_seconds": _NUMBER,
    "talk_seconds": _NUMBER,
    "language": _TEXT,
    "location": _TEXT,
    "location_method": _TEXT,
    "route_hops": (list,),
    "variables": (dict,),
    "outcome": _TEXT,
    "callback_requested": (bool,),
    "from_110": (bool,),
    "priority": _TEXT,
}


class AuditChange(NamedTuple):
    """One row of the audit trail, as the ticket change feed publishes it."""

    entry: int
    ticket_id: str
    action: str
    actor: str
    from_status: str | None
    to_status: str | None


class TicketDayKey(NamedTuple):
    """Tickets of one location and category opened on one local day (see
    :meth:`TicketStore.ticket_counts_per_day`)."""

    location: str | None
    category: str | None
    day: date


class StoreNotStarted(TicketError):
    """The store is not started, or closed: a write may wait (in the spool) until it is."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidTicketUpdate(f"{name}: naive datetime {value.isoformat()}; give a timezone")
    return value


def check_call_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` checked against CALL_FIELDS; raises InvalidTicketUpdate. Public so that a
    writer that defers the store (the spool) rejects a bad field at once, as the store would."""
    checked: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in CALL_FIELDS:
            allowed = ", ".join(sorted(CALL_FIELDS))
            raise InvalidTicketUpdate(f"{name!r} is not a call field; call fields: {allowed}")
        kinds = CALL_FIELDS[name]
        wrong_kind = not isinstance(value, kinds) or (kinds is _NUMBER and isinstance(value, bool))
        if value is not None and wrong_kind:
            expected = " or ".join(kind.__name__ for kind in kinds)
            raise InvalidTicketUpdate(f"{name}: expected {expected}, got {value!r}")
        if isinstance(value, datetime):
            value = _aware(value, name)
        if value is None and name in {"ivr_path", "route_hops", "variables"}:
            raise InvalidTicketUpdate(f"{name}: may not be null")
        if value is None and name in {"emergency", "callback_requested", "from_110"}:
            raise InvalidTicketUpdate(f"{name}: may not be null")
        checked[name] = value
    return checked


def _seconds(later: datetime, earlier: datetime) -> float:
    return round(max((later - earlier).total_seconds(), 0.0), 3)


#: The tables, not the mapped classes, for the call's hot writes: Core statements with no
#: ORM bookkeeping.
_TICKETS = cast(Table, Ticket.__table__)
_AUDIT = cast(Table, AuditEntry.__table__)
#: What a call's durations are worked out from (see _durations).
_DURATION_COLUMNS = (
    Ticket.created_at,
    Ticket.answered_at,
    Ticket.ended_at,
    Ticket.wait_seconds,
    Ticket.talk_seconds,
)


def _durations(stored: Any, given: Mapping[str, Any]) -> dict[str, float]:
    """The wait and talk seconds to fill in, from ``stored`` (a row of _DURATION_COLUMNS)
    updated with ``given``. Wait runs from the ticket's opening to the answer (or to the
    hang-up of a call nobody answered); talk from the answer to the end. Values the
    controller gave, or stored earlier, win."""
    answered = given.get("answered_at", stored.answered_at)
    ended = given.get("ended_at", stored.ended_at)
    filled: dict[str, float] = {}
    if "wait_seconds" not in given and stored.wait_seconds is None:
        until = answered or ended
        if until is not None:
            filled["wait_seconds"] = _seconds(until, stored.created_at)
    if "talk_seconds" not in given and stored.talk_seconds is None and answered and ended:
        filled["talk_seconds"] = _seconds(ended, answered)
    return filled


def _ticket_filter(ref: str | int) -> ColumnElement[bool]:
    """A ticket named by its id (T20261127-000042) or its number (42)."""
    if isinstance(ref, int):
        return Ticket.number == ref
    text = ref.strip()
    if text.isdigit():
        return Ticket.number == int(text)
    return Ticket.id == text.upper()


def _status(name: str) -> Status:
    try:
        return Status(name)
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise TicketError(f"unknown status {name!r}; statuses: {known}") from None


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _is_memory_sqlite(url: str) -> bool:
    database = make_url(url).database
    return _is_sqlite(url) and database in (None, "", ":memory:")


def _sqlite_pragmas(*, writer: bool) -> Callable[[DBAPIConnection, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take transactions out of the driver's hands so that "begin" below decides them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit the controller was told about survives a power cut, not just a crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not writer:
            cursor.execute("PRAGMA query_only = ON")
            # Each reader's page cache grew towards SQLite's default 2 MB as the day's
            # tickets grew, a dozen readers over a day: the soak saw it as steady growth.
            # Reads are index lookups and counts; the OS caches the file for all of them.
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_READER_CACHE_KIB}")
        cursor.close()

    return on_connect


def _sqlite_begin(statement: str) -> Callable[[Connection], None]:
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(statement)

    return on_begin


#: Connections a store keeps open. SQLAlchemy's default (5, and up to 10 more opened and
#: closed around each burst) churned a connection a second under load: with aiosqlite a
#: thread and a fresh SQLite cache each time, with PostgreSQL a server process; the
#: controller's memory grew by megabytes a minute. A read beyond these waits for one.
POOL_SIZE = 12
#: SQLite readers: each is a thread with its own page and statement caches, and reads are
#: short lookups that hold the GIL most of their time anyway; more would add memory, not
#: throughput.
SQLITE_READERS = 4


def _make_engine(url: str, *, writer: bool) -> AsyncEngine:
    if not _is_sqlite(url):
        return create_async_engine(
            url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=0
        )
    if _is_memory_sqlite(url):
        # One shared connection, or the writer and the readers would see two databases.
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        # The writer is one task: one connection (two while the schema is upgraded).
        engine = create_async_engine(
            url, pool_size=2 if writer else SQLITE_READERS, max_overflow=0
        )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas(writer=writer))
    event.listen(
        engine.sync_engine, "begin", _sqlite_begin("BEGIN IMMEDIATE" if writer else "BEGIN")
    )
    return engine


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("ivr.tickets") / "migrations"))
    config.attributes["connection"] = connection
    return config


#: Serialises schema upgrades of several controller processes on one PostgreSQL database.
_PG_MIGRATION_LOCK = 12345_0001


def _upgrade_on(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    command.upgrade(_alembic_config(connection), "head")


async def _upgrade_engine(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_on)


async def upgrade_schema(url: str) -> None:
    """Bring the tickets schema at ``url`` to the newest migration (creating it if needed)."""
    engine = _make_engine(url, writer=True)
    try:
        await _upgrade_engine(engine)
    finally:
        await engine.dispose()


@dataclass
class _Job:
    run: Callable[[AsyncSession], Awaitable[Any]]
    done: asyncio.Future[Any]


class TicketStore:
    """``await start()`` before use and ``await close()`` after (or ``async with``)."""

    def __init__(
        self,
        url: str,
        *,
        deadlines: DeadlinePolicy = DEFAULT_POLICY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.url = url
        self.deadlines = deadlines
        self._clock = clock
        self._sqlite = _is_sqlite(url)
        self._writer_engine: AsyncEngine | None = None
        self._reader_engine: AsyncEngine | None = None
        self._write_sessions: async_sessionmaker[AsyncSession] | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._writer is not None:
            return
        if self._sqlite and not _is_memory_sqlite(self.url):
            database = make_url(self.url).database
            assert database is not None
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        writer_engine = _make_engine(self.url, writer=True)
        try:
            await _upgrade_engine(writer_engine)
        except BaseException:
            await writer_engine.dispose()
            raise
        if self._sqlite and not _is_memory_sqlite(self.url):
            reader_engine = _make_engine(self.url, writer=False)
        else:
            reader_engine = writer_engine
        self._writer_engine, self._reader_engine = writer_engine, reader_engine
        self._write_sessions = async_sessionmaker(writer_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(reader_engine, expire_on_commit=False)
        self._writer = asyncio.create_task(self._write_loop(), name="ticket-writer")

    async def close(self) -> None:
        """Finish every queued write, then let go of the database."""
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        engines = {id(e): e for e in (self._writer_engine, self._reader_engine) if e}
        for engine in engines.values():
            await engine.dispose()
        self._writer_engine = self._reader_engine = None

    async def __aenter__(self) -> TicketStore:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- the writer -------------------------------------------------------------------------

    async def _write(self, run: WriteJob[R]) -> R:
        if self._writer is None or self._writer.done():
            raise StoreNotStarted("the ticket store is not started")
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(run, done))
        return await done

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < WRITE_BATCH_LIMIT and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            await self._run_batch(batch)

    async def _run_batch(self, batch: Sequence[_Job]) -> None:
        assert self._write_sessions is not None
        try:
            async with self._write_sessions() as session, session.begin():
                results = [await job.run(session) for job in batch]
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].done.done():
                    batch[0].done.set_exception(exc)
                return
            # One job failed and took the shared transaction with it: redo each on its own
            # so only the faulty one reports its error.
            for job in batch:
                await self._run_batch([job])
            return
        for job, result in zip(batch, results, strict=True):
            if not job.done.done():
                job.done.set_result(result)

    # -- the call controller's side ---------------------------------------------------------

    def _insert(self) -> Any:
        return (sqlite if self._sqlite else postgresql).insert(Ticket)

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
    ) -> str:
        """The ticket of the call ``linkedid``, opened now if it has none yet; its id."""
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
        opened = _aware(created_at, "created_at") if created_at else self._clock()
        values: dict[str, Any] = {
            "ivr_path": [],
            "route_hops": [],
            "variables": {},
            "emergency": False,
            "callback_requested": False,
            "from_110": False,
            **fields,
            # Unique and never seen again: the real id needs the number the insert assigns.
            "id": f"pending-{uuid.uuid4().hex}",
            "linkedid": linkedid,
            "status": Status.ACCEPTED.value,
            "created_at": opened,
            "updated_at": opened,
        }

        async def job(session: AsyncSession) -> str:
            # Looked up first so that a repeated open_call does not use up a number (PostgreSQL
            # draws the sequence even when ON CONFLICT then skips the row).
            existing = await session.scalar(select(Ticket.id).where(Ticket.linkedid == linkedid))
            if existing is not None:
                return existing
            statement = self._insert().values(**values).on_conflict_do_nothing()
            number = (await session.execute(statement.returning(Ticket.number))).scalar()
            if number is None:
                existing = await session.scalar(
                    select(Ticket.id).where(Ticket.linkedid == linkedid)
                )
                if existing is None:
                    raise TicketError(f"call {linkedid}: could not open a ticket")
                return existing
            ticket_id = format_ticket_id(number, opened)
            await session.execute(
                update(_TICKETS).where(_TICKETS.c.number == number).values(id=ticket_id)
            )
            await session.execute(
                insert(_AUDIT).values(
                    ticket_id=ticket_id,
                    at=opened,
                    actor=CALL_ACTOR,
                    action="accept",
                    from_status=None,
                    to_status=Status.ACCEPTED.value,
                    note=f"call {linkedid} on line {line or '?'} from {caller or '?'}",
                )
            )
            return ticket_id

        return await self._write(job)

    # The call's writes are most of the controller's CPU (a handful per call): they read and
    # write just the columns they touch, with Core statements, never the whole ORM ticket.

    async def _call_row(
        self, session: AsyncSession, linkedid: str, *columns: QueryableAttribute[Any]
    ) -> Any:
        """The call's ticket id and ``columns``, locked for this write."""
        query = select(Ticket.id, *columns).where(Ticket.linkedid == linkedid).with_for_update()
        row = (await session.execute(query)).one_or_none()
        if row is None:
            raise UnknownTicket(f"for call {linkedid}")
        return row

    async def _set_call(
        self, session: AsyncSession, linkedid: str, values: Mapping[str, Any]
    ) -> str:
        ticket_id: str | None = await session.scalar(
            update(_TICKETS)
            .where(_TICKETS.c.linkedid == linkedid)
            .values(**values, updated_at=self._clock())
            .returning(_TICKETS.c.id)
        )
        if ticket_id is None:
            raise UnknownTicket(f"for call {linkedid}")
        return ticket_id

    async def update_call(self, linkedid: str, **fields: Any) -> str:
        """Set call data (never the status); ``variables`` are merged into those stored.
        Wait and talk seconds are filled in from the times when not given, by a write that
        sets a time, or by one with no fields at all. Returns the id."""
        checked = check_call_fields(fields)
        reads_row = not checked or not checked.keys().isdisjoint(
            {"variables", "answered_at", "ended_at"}
        )

        async def job(session: AsyncSession) -> str:
            if not reads_row:
                return await self._set_call(session, linkedid, checked)
            stored = await self._call_row(session, linkedid, Ticket.variables, *_DURATION_COLUMNS)
            values = {**checked, **_durations(stored, checked)}
            if "variables" in checked:
                values["variables"] = {**stored.variables, **checked["variables"]}
            return await self._set_call(session, linkedid, values)

        return await self._write(job)

    async def append_path(self, linkedid: str, node_ids: Sequence[str]) -> str:
        """Add the IVR nodes the caller went through, in order."""
        nodes = [str(node) for node in node_ids]

        async def job(session: AsyncSession) -> str:
            stored = await self._call_row(session, linkedid, Ticket.ivr_path)
            return await self._set_call(session, linkedid, {"ivr_path": [*stored.ivr_path, *nodes]})

        return await self._write(job)

    async def append_route_hop(
        self,
        linkedid: str,
        *,
        unit: str,
        level: str | None = None,
        queue: str | None = None,
        outcome: str | None = None,
    ) -> str:
        """Record one attempt of the router (a queue of a unit at a level) and how it went."""
        hop = {"unit": unit, "level": level, "queue": queue, "outcome": outcome}

        async def job(session: AsyncSession) -> str:
            stored = await self._call_row(session, linkedid, Ticket.route_hops)
            hops = [*stored.route_hops, hop]
            return await self._set_call(session, linkedid, {"route_hops": hops})

        return await self._write(job)

    # -- lifecycle actions ------------------------------------------------------------------

    async def _locked(self, session: AsyncSession, ref: str | int) -> Ticket:
        ticket = await session.scalar(select(Ticket).where(_ticket_filter(ref)).with_for_update())
        if ticket is None:
            raise UnknownTicket(str(ref))
        return ticket

    async def _act(
        self,
        ref: str | int,
        action: Action,
        *,
        actor: str,
        note: str | None,
        now: datetime | None,
        rating: Rating | None = None,
        apply: Callable[[Ticket, Status, datetime], str | None] | None = None,
    ) -> Ticket:
        """Check ``action`` against the state machine, apply it, and write its audit row.
        ``apply`` makes the action's own changes and may return what the audit note starts
        with (such as the unit)."""
        if not actor:
            raise TicketError("an actor is needed for the audit trail")
        at = _aware(now, "now") if now else self._clock()

        async def job(session: AsyncSession) -> Ticket:
            ticket = await self._locked(session, ref)
            before = Status(ticket.status)
            after = next_status(ticket.id, before, action, rating=rating)
            lead = apply(ticket, after, at) if apply else None
            ticket.status = after.value
            ticket.updated_at = at
            session.add(
                AuditEntry(
                    ticket_id=ticket.id,
                    at=at,
                    actor=actor,
                    action=action.value,
                    from_status=before.value,
                    to_status=after.value,
                    note=": ".join(part for part in (lead, note) if part) or None,
                )
            )
            await session.flush()
            # A snapshot for this caller alone: a later job of the same batch may change it.
            session.expunge(ticket)
            return ticket

        return await self._write(job)

    def _start_deadline(self, ticket: Ticket, at: datetime) -> None:
        ticket.deadline = self.deadlines.deadline_for(ticket.category, ticket.priority, at)
        ticket.overdue_at = None

    async def assign(
        self,
        ticket_id: str | int,
        unit: str,
        *,
        actor: str,
        level: str | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Ticket:
        """The centre gives the ticket to ``unit`` (交办); the unit's deadline starts now."""
        if not unit:
            raise TicketError("assign: a unit is needed")

        def apply(ticket: Ticket, _after: Status, at: datetime) -> str:
            ticket.unit = unit
            if level is not None:
                ticket.level = level
            self._start_deadline(ticket, at)
            return f"to {unit}"

        return await self._act(ticket_id, Action.ASSIGN, actor=actor, note=note, now=now,
                               apply=apply)

    async def dispatch(
        self,
        ticket_id: str | int,
        unit: str,
        *,
        actor: str,
        level: str | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Ticket:
        """The unit hands the ticket up or down a level (上报/派发); the deadline is kept."""
        if not unit:
            raise TicketError("dispatch: a unit is needed")

        def apply(ticket: Ticket, _after: Status, at: datetime) -> str:
            if ticket.unit == unit:
                raise TicketError(f"ticket {ticket.id} is already with {unit}")
            previous = ticket.unit or "nobody"
            ticket.unit = unit
            if level is not None:
                ticket.level = level
            if ticket.deadline is None:
                self._start_deadline(ticket, at)
            return f"from {previous} to {unit}"

        return await self._act(ticket_id, Action.DISPATCH, actor=actor, note=note, now=now,
                               apply=apply)

    async def return_(
        self,
        ticket_id: str | int,
        reason: str,
        *,
        actor: str,
        now: datetime | None = None,
    ) -> Ticket:
        """The unit sends a misrouted ticket back to the centre (退单) for reassignment."""
        if not reason.strip():
            raise TicketError("return: a reason is needed")

        def apply(ticket: Ticket, _after: Status, _at: datetime) -> str:
            previous = ticket.unit or "nobody"
            ticket.unit = None
            ticket.level = None
            return f"by {previous}"

        return await self._act(ticket_id, Action.RETURN, actor=actor, note=reason, now=now,
                               apply=apply)

    async def start_work(self, ticket_id: str | int, *, actor: str, note: str | None = None,
                         now: datetime | None = None) -> Ticket:
        """The unit begins working on the ticket. Named apart from ``start()``, which opens
        the store."""
        return await self._act(ticket_id, Action.START, actor=actor, note=note, now=now)

    async def resolve(self, ticket_id: str | int, *, actor: str, note: str | None = None,
                      now: datetime | None = None) -> Ticket:
        def apply(ticket: Ticket, _after: Status, _at: datetime) -> None:
            # Every resolution is followed up, a reopened ticket's again from the start.
            ticket.followup_attempts = 0
            ticket.followup_last_at = None

        return await self._act(ticket_id, Action.RESOLVE, actor=actor, note=note, now=now,
                               apply=apply)

    async def follow_up(
        self,
        ticket_id: str | int,
        rating: Rating | str,
        *,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Ticket:
        """The follow-up call's rating (回访); dissatisfied reopens the ticket at its unit
        with a fresh deadline."""
        chosen = rating if isinstance(rating, Rating) else parse_rating(rating)

        def apply(ticket: Ticket, after: Status, at: datetime) -> str:
            ticket.rating = chosen.value
            if after is Status.REOPENED:
                self._start_deadline(ticket, at)
            return f"rated {chosen.value}"

        return await self._act(ticket_id, Action.FOLLOW_UP, actor=actor, note=note, now=now,
                               rating=chosen, apply=apply)

    async def evaluate(
        self,
        ticket_id: str | int,
        *,
        actor: str,
        score: int | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Ticket:
        """The evaluation of the unit's handling (考评), with an optional 0-100 score."""
        if score is not None and not 0 <= score <= 100:
            raise TicketError(f"evaluate: score {score} is not between 0 and 100")

        def apply(ticket: Ticket, _after: Status, _at: datetime) -> str | None:
            ticket.evaluation_score = score
            return None if score is None else f"score {score}"

        return await self._act(ticket_id, Action.EVALUATE, actor=actor, note=note, now=now,
                               apply=apply)

    async def close_ticket(self, ticket_id: str | int, *, actor: str, note: str | None = None,
                           now: datetime | None = None) -> Ticket:
        """Close an evaluated ticket, or a call that carried no matter (still ``accepted``).
        Named apart from ``close()``, which shuts the store."""
        return await self._act(ticket_id, Action.CLOSE, actor=actor, note=note, now=now)

    async def note(self, ticket_id: str | int, text: str, *, actor: str,
                   now: datetime | None = None) -> Ticket:
        """A remark in the audit trail; the status stays."""
        if not text.strip():
            raise TicketError("note: the text is empty")
        return await self._act(ticket_id, Action.NOTE, actor=actor, note=text, now=now)

    async def merge(
        self,
        duplicate_id: str | int,
        into_id: str | int,
        *,
        actor: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> Ticket:
        """Join a duplicate complaint to its original (合并); the duplicate is final, and
        duplicates merged into it earlier now point at the original too."""
        if not actor:
            raise TicketError("an actor is needed for the audit trail")
        at = _aware(now, "now") if now else self._clock()

        async def job(session: AsyncSession) -> Ticket:
            duplicate = await self._locked(session, duplicate_id)
            original = await self._locked(session, into_id)
            check_merge(duplicate.id, duplicate.status, original.id, original.status)
            before = duplicate.status
            duplicate.status = Status.MERGED.value
            duplicate.parent_id = original.id
            duplicate.updated_at = at
            await session.execute(
                update(Ticket).where(Ticket.parent_id == duplicate.id).values(parent_id=original.id)
            )
            tail = f": {note}" if note else ""
            session.add_all(
                [
                    AuditEntry(ticket_id=duplicate.id, at=at, actor=actor, action="merge",
                               from_status=before, to_status=Status.MERGED.value,
                               note=f"into {original.id}{tail}"),
                    AuditEntry(ticket_id=original.id, at=at, actor=actor, action="merge",
                               from_status=original.status, to_status=original.status,
                               note=f"duplicate {duplicate.id} joined{tail}"),
                ]
            )
            await session.flush()
            session.expunge(duplicate)
            return duplicate

        return await self._write(job)

    async def mark_overdue(self, now: datetime | None = None) -> builtins.list[str]:
        """Flag the tickets whose deadline passed (``overdue_at`` plus an audit row) and
        return their ids; each is flagged once per deadline."""
        at = _aware(now, "now") if now else self._clock()

        async def job(session: AsyncSession) -> builtins.list[str]:
            candidates = await session.scalars(
                select(Ticket)
                .where(
                    Ticket.status.in_([s.value for s in RUNNING_STATUSES]),
                    Ticket.deadline <= at,
                    Ticket.overdue_at.is_(None),
                )
                .with_for_update()
            )
            flagged = find_overdue(candidates.all(), at)
            for ticket in flagged:
                ticket.overdue_at = at
                assert ticket.deadline is not None
                session.add(
                    AuditEntry(ticket_id=ticket.id, at=at, actor=SYSTEM_ACTOR, action="overdue",
                               from_status=ticket.status, to_status=ticket.status,
                               note=f"deadline {ticket.deadline.isoformat()} passed")
                )
            return [ticket.id for ticket in flagged]

        return await self._write(job)

    async def record_outbound_attempt(
        self,
        ticket_id: str | int,
        kind: OutboundKind,
        *,
        actor: str,
        note: str,
        now: datetime | None = None,
    ) -> Ticket:
        """Count one call to the citizen (follow-up or callback) BEFORE it is dialled: a
        crash or a lost AMI reply then costs an attempt, never a second unexpected call."""
        at = _aware(now, "now") if now else self._clock()

        async def job(session: AsyncSession) -> Ticket:
            ticket = await self._locked(session, ticket_id)
            if kind is OutboundKind.FOLLOW_UP:
                ticket.followup_attempts += 1
                ticket.followup_last_at = at
                attempt = ticket.followup_attempts
            else:
                ticket.callback_attempts += 1
                ticket.callback_last_at = at
                attempt = ticket.callback_attempts
            ticket.updated_at = at
            session.add(
                AuditEntry(ticket_id=ticket.id, at=at, actor=actor, action=f"{kind.value}_call",
                           from_status=ticket.status, to_status=ticket.status,
                           note=f"attempt {attempt}: {note}")
            )
            await session.flush()
            session.expunge(ticket)
            return ticket

        return await self._write(job)

    async def callback_done(
        self, ticket_id: str | int, *, actor: str, note: str, now: datetime | None = None
    ) -> Ticket:
        """The callback is done: the citizen answered it (an agent already on the line), or
        got through to an agent on a later call of their own."""
        at = _aware(now, "now") if now else self._clock()

        async def job(session: AsyncSession) -> Ticket:
            ticket = await self._locked(session, ticket_id)
            ticket.callback_done_at = at
            ticket.updated_at = at
            session.add(
                AuditEntry(ticket_id=ticket.id, at=at, actor=actor, action="callback_done",
                           from_status=ticket.status, to_status=ticket.status, note=note)
            )
            await session.flush()
            session.expunge(ticket)
            return ticket

        return await self._write(job)

    async def outbound_candidates(self, limit: int | None = 500) -> builtins.list[Ticket]:
        """Tickets that may be owed a call, oldest first: resolved ones (a follow-up) and
        ended calls marked for a callback not yet made. Calling hours, attempts and free
        agents are the planner's to judge (ivr.outbound.plan)."""
        owed_callback = and_(
            Ticket.callback_requested.is_(True),
            Ticket.callback_done_at.is_(None),
            Ticket.ended_at.is_not(None),
            Ticket.status.not_in([s.value for s in FINAL_STATUSES]),
        )
        query = (
            select(Ticket)
            .where(or_(Ticket.status == Status.RESOLVED.value, owed_callback))
            .order_by(Ticket.number)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._reading() as session:
            return builtins.list((await session.scalars(query)).all())

    async def last_answered(self, callers: Iterable[str]) -> dict[str, datetime]:
        """When each of ``callers`` was last answered by an agent (callers never answered
        are absent)."""
        wanted = sorted(set(callers))
        found: dict[str, datetime] = {}
        async with self._reading() as session:
            for start in range(0, len(wanted), _GET_MANY_SLICE):
                rows = await session.execute(
                    select(Ticket.caller, func.max(Ticket.answered_at))
                    .where(Ticket.caller.in_(wanted[start : start + _GET_MANY_SLICE]))
                    .where(Ticket.answered_at.is_not(None))
                    .group_by(Ticket.caller)
                )
                found.update((caller, at) for caller, at in rows if caller and at)
        return found

    async def ticket_counts_per_day(
        self, *, first_day: date, last_day: date, tz: tzinfo
    ) -> dict[TicketDayKey, int]:
        """How many tickets were opened per location, category and local day (in ``tz``) from
        ``first_day`` to ``last_day``, both included; location and category may be None.

        The database counts (GROUP BY): one row per location, category and day that had
        tickets, however many they were, for the hotspot scheduler that asks for six weeks of
        a city's tickets every few minutes. It groups by local day, not by UTC hour folded
        into days here: a big city's hourly keys are nearly as many as its tickets. The times
        are stored in UTC and SQLite knows no time zones, so the local midnights go in as UTC
        instants (daylight saving time included) and a ticket's day is the last one it follows."""
        days = [first_day + timedelta(days=k) for k in range((last_day - first_day).days + 1)]
        if not days:
            return {}
        midnights = [datetime.combine(day, time(), tzinfo=tz) for day in days]
        end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=tz)
        day_index = case(
            *(
                (Ticket.created_at < next_midnight, index)
                for index, next_midnight in enumerate([*midnights[1:], end])
            )
        )
        keys = (Ticket.location, Ticket.category, day_index)
        query = (
            select(*keys, func.count())
            .where(Ticket.created_at >= midnights[0], Ticket.created_at < end)
            .group_by(*keys)
        )
        async with self._reading() as session:
            rows = await session.execute(query)
            return {
                TicketDayKey(location, category, days[index]): count
                for location, category, index, count in rows
            }

    async def ticket_ids_opened(
        self, *, category: str, locations: Iterable[str], start: datetime, end: datetime
    ) -> builtins.list[str]:
        """The ids of the tickets of ``category`` in any of ``locations`` opened from
        ``start`` (included) to ``end`` (excluded), oldest first."""
        wanted = sorted(set(locations))
        numbered: builtins.list[tuple[int, str]] = []
        async with self._reading() as session:
            for first in range(0, len(wanted), _GET_MANY_SLICE):
                rows = await session.execute(
                    select(Ticket.number, Ticket.id)
                    .where(Ticket.category == category)
                    .where(Ticket.location.in_(wanted[first : first + _GET_MANY_SLICE]))
                    .where(Ticket.created_at >= _aware(start, "start"))
                    .where(Ticket.created_at < _aware(end, "end"))
                )
                numbered.extend((number, ticket_id) for number, ticket_id in rows)
        return [ticket_id for _number, ticket_id in sorted(numbered)]

    # -- reads ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _reading(self) -> Any:
        if self._read_sessions is None:
            raise StoreNotStarted("the ticket store is not started")
        async with self._read_sessions() as session, session.begin():
            yield session

    async def count_since(
        self,
        since: datetime,
        by: QueryableAttribute[Any] | ColumnElement[Any],
        conditions: Mapping[str, ColumnElement[bool]],
    ) -> dict[Any, dict[str, int]]:
        """Per value of ``by``, how many tickets opened since ``since`` meet each condition
        (named as in ``conditions``). The database counts: a live figure over an hour of a
        busy hotline's tickets costs the controller a few rows, not an hour of tickets."""
        counted = [
            func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name)
            for name, condition in conditions.items()
        ]
        query = (
            select(by, *counted)
            .where(Ticket.created_at >= _aware(since, "since"))
            .group_by(by)
        )
        async with self._reading() as session:
            rows = (await session.execute(query)).all()
        return {group: dict(zip(conditions, map(int, sums), strict=True)) for group, *sums in rows}

    async def get(self, ticket_id: str | int) -> Ticket:
        """The ticket named by its id (``T20261127-000042``) or number (``42``);
        raises UnknownTicket."""
        async with self._reading() as session:
            ticket: Ticket | None = await session.scalar(
                select(Ticket).where(_ticket_filter(ticket_id))
            )
        if ticket is None:
            raise UnknownTicket(str(ticket_id))
        return ticket

    async def get_many(self, ticket_ids: Iterable[str]) -> dict[str, Ticket]:
        """The tickets among ``ticket_ids`` (ids such as ``T20261127-000042``) that exist,
        by id; unknown ids are simply absent."""
        wanted = sorted({ticket_id.strip().upper() for ticket_id in ticket_ids})
        found: dict[str, Ticket] = {}
        async with self._reading() as session:
            # In slices: SQLite caps the number of bound parameters of one statement.
            for start in range(0, len(wanted), _GET_MANY_SLICE):
                rows = await session.scalars(
                    select(Ticket).where(Ticket.id.in_(wanted[start : start + _GET_MANY_SLICE]))
                )
                found.update((ticket.id, ticket) for ticket in rows)
        return found

    async def by_linkedid(self, linkedid: str) -> Ticket | None:
        async with self._reading() as session:
            found: Ticket | None = await session.scalar(
                select(Ticket).where(Ticket.linkedid == linkedid)
            )
            return found

    async def ticket_id_of(self, linkedid: str) -> str | None:
        found = await self.by_linkedid(linkedid)
        return found.id if found is not None else None

    async def caller_history(self, caller: str, limit: int = 5) -> builtins.list[dict[str, Any]]:
        """The caller's latest tickets in brief, for an agent's screen when the call rings."""
        if not caller:
            return []
        return [
            {
                "ticket_id": t.id,
                "created_at": t.created_at.isoformat() if t.created_at else None,
                "category": t.category,
                "status": t.status,
                "unit": t.unit,
            }
            for t in await self.list(caller=caller, limit=limit)
        ]

    async def caller_location(self, caller: str) -> str | None:
        """Where the caller was found on their latest located call (not just "the city")."""
        if not caller:
            return None
        query = (
            select(Ticket.location)
            .where(Ticket.caller == caller)
            .where(Ticket.location_method.in_(("zone", "registry", "ivr")))
            .order_by(Ticket.number.desc())
            .limit(1)
        )
        async with self._reading() as session:
            found: str | None = await session.scalar(query)
            return found

    async def by_sip_call_id(self, call_id: str) -> Ticket | None:
        """The newest ticket of the SIP dialog ``call_id``."""
        async with self._reading() as session:
            found: Ticket | None = await session.scalar(
                select(Ticket)
                .where(Ticket.sip_call_id == call_id)
                .order_by(Ticket.number.desc())
                .limit(1)
            )
            return found

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        unit: str | None = None,
        caller: str | None = None,
        overdue: bool | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
        now: datetime | None = None,
    ) -> builtins.list[Ticket]:
        """Tickets newest first. ``overdue=True``: deadline passed at ``now`` while still
        being worked on (see lifecycle.RUNNING_STATUSES); ``False``: all the others."""
        query = select(Ticket).order_by(Ticket.number.desc())
        if status is not None:
            wanted = [status] if isinstance(status, str) else builtins.list(status)
            query = query.where(Ticket.status.in_([_status(s).value for s in wanted]))
        if unit is not None:
            query = query.where(Ticket.unit == unit)
        if caller is not None:
            query = query.where(Ticket.caller == caller)
        if since is not None:
            query = query.where(Ticket.created_at >= _aware(since, "since"))
        if overdue is not None:
            at = _aware(now, "now") if now else self._clock()
            late = Ticket.status.in_([s.value for s in RUNNING_STATUSES]) & (Ticket.deadline <= at)
            query = query.where(late if overdue else or_(~late, Ticket.deadline.is_(None)))
        if limit is not None:
            query = query.limit(limit)
        async with self._reading() as session:
            return builtins.list((await session.scalars(query)).all())

    async def last_audit_entry(self) -> int:
        """The number of the newest audit row (0 when there is none)."""
        async with self._reading() as session:
            found: int | None = await session.scalar(select(func.max(AuditEntry.entry)))
            return found or 0

    async def changes_after(self, entry: int, limit: int = 500) -> builtins.list[AuditChange]:
        """The audit rows of every ticket numbered after ``entry``, oldest first, in brief:
        the feed of ticket changes, whichever process made them. Plain rows, not ORM
        objects: the feed reads a few hundred every second."""
        columns = [getattr(_AUDIT.c, name) for name in AuditChange._fields]
        query = select(*columns).where(_AUDIT.c.entry > entry).order_by(_AUDIT.c.entry)
        async with self._reading() as session:
            rows = await session.execute(query.limit(limit))
            return [AuditChange(*row) for row in rows]

    async def history(self, ticket_id: str | int) -> builtins.list[AuditEntry]:
        """The audit rows of one ticket, oldest first; raises UnknownTicket."""
        async with self._reading() as session:
            found = await session.scalar(select(Ticket.id).where(_ticket_filter(ticket_id)))
            if found is None:
                raise UnknownTicket(str(ticket_id))
            rows = await session.scalars(
                select(AuditEntry).where(AuditEntry.ticket_id == found).order_by(AuditEntry.entry)
            )
            return builtins.list(rows.all())
