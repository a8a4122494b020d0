"""Figures for operators on Prometheus' ``/metrics`` (issue 9 part 6; names in
docs/metrics.md): live calls, calls by line and outcome, callers waiting per queue and the
longest wait, agents on duty per unit, and the recent service level.

Everything goes into ONE registry, the one the event notifier counts its events in. Calls
update their counter and gauge as they go (:class:`CallMetrics`); the rest is read when
Prometheus scrapes (:class:`HotlineCollector`), from state the controller keeps anyway. The
endpoint (:class:`MetricsServer`) answers inside the event loop on purpose: the collector then
reads the agent board and the queues between two events, never half-way through one, with no
lock and no copy. A scrape costs about a millisecond of the loop.

:class:`QueueCallers` and :func:`agents_by_unit` are pure state and decision; the server and
the service level refresh are the I/O edges.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.sql.elements import ColumnElement

from ivr.agent_board import LOGGED_OUT_REASON, PRESENT_STATES, AgentBoard, MemberState
from ivr.reports.metrics import NO_VALUE, ratio
from ivr.reports.records import answered_within_sql, offered_sql
from ivr.tickets import Ticket, TicketStore

log = structlog.get_logger(__name__)

#: Asterisk's device state of a member that is idle and can be offered a call at once.
NOT_INUSE = 1
#: AMI events that tell who waits in which queue.
QUEUE_CALLER_EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")
#: The ``outcome`` of a call whose handler failed before it could tell one.
FAILED_OUTCOME = "failed"
#: The ``unit`` label of the figures over the whole hotline.
ALL_UNITS = "all"
#: How often the service level is worked out again from the tickets.
SERVICE_LEVEL_REFRESH_SECONDS = 30.0
#: A scraper that has not sent its request within this many seconds is dropped.
REQUEST_TIMEOUT_SECONDS = 5.0


# -- pure state -------------------------------------------------------------------------------


class QueueCallers:
    """Who waits in which queue, since when (the controller's clock when the event came).

    After an AMI reconnect the controller calls :meth:`clear`: callers who joined while the
    link was down are not counted until the next one joins, which beats counting callers who
    left unseen forever."""

    def __init__(self) -> None:
        self._joined: dict[str, dict[str, datetime]] = {}

    def apply(self, event: Mapping[str, str], now: datetime) -> None:
        """One AMI event (header names lower-cased); any other event changes nothing."""
        name = event.get("event", "")
        queue = event.get("queue", "")
        caller = event.get("uniqueid", "")
        if not queue or not caller:
            return
        if name == "QueueCallerJoin":
            self._joined.setdefault(queue, {}).setdefault(caller, now)
        elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
            waiting = self._joined.get(queue, {})
            waiting.pop(caller, None)
            if not waiting:
                self._joined.pop(queue, None)

    def clear(self) -> None:
        self._joined.clear()

    def waiting(self, queue: str) -> int:
        return len(self._joined.get(queue, {}))

    def longest_wait(self, queue: str, now: datetime) -> float:
        """Seconds the first caller in ``queue`` has waited; 0 when nobody waits."""
        joined = self._joined.get(queue)
        if not joined:
            return 0.0
        return max((now - min(joined.values())).total_seconds(), 0.0)

    def queues(self) -> set[str]:
        return set(self._joined)


@dataclass(frozen=True)
class AgentCounts:
    #: Phone registered and not logged out (paused ones included).
    on_duty: int = 0
    #: On duty, not paused, phone idle: could take a call this second.
    available: int = 0
    #: On duty but paused in every queue of the unit (a break, after-call work).
    paused: int = 0


@dataclass
class _AgentState:
    on_duty: bool = False
    available: bool = False
    working: bool = False


def agents_by_unit(
    members: Iterable[MemberState], unit_of_queue: Mapping[str, str]
) -> dict[str, AgentCounts]:
    """Agents (not queue memberships: an agent in a unit's Mandarin and English queues
    counts once) per unit, from the board's members; unknown queues are left out."""
    agents: dict[tuple[str, str], _AgentState] = {}
    for member in members:
        unit = unit_of_queue.get(member.queue)
        if unit is None:
            continue
        state = agents.setdefault((unit, member.agent_id), _AgentState())
        logged_out = member.paused and member.paused_reason == LOGGED_OUT_REASON
        if logged_out or member.status not in PRESENT_STATES:
            continue
        state.on_duty = True
        state.working = state.working or not member.paused
        state.available = state.available or (not member.paused and member.status == NOT_INUSE)
    counts: dict[str, AgentCounts] = {unit: AgentCounts() for unit, _ in agents}
    for (unit, _), state in agents.items():
        before = counts[unit]
        counts[unit] = AgentCounts(
            on_duty=before.on_duty + state.on_duty,
            available=before.available + state.available,
            paused=before.paused + (state.on_duty and not state.working),
        )
    return counts


@dataclass(frozen=True)
class ServiceLevel:
    """Calls offered to a person in the window, and those answered in time."""

    offered: int = 0
    answered_within: int = 0

    @property
    def service_level(self) -> float | None:
        return ratio(self.answered_within, self.offered)


def service_level_conditions(answer_within_seconds: float) -> dict[str, ColumnElement[bool]]:
    """The counts the service level is made of, as SQL over the ticket table."""
    return {"offered": offered_sql(), "answered_within": answered_within_sql(answer_within_seconds)}


def service_levels(counts: Mapping[str | None, Mapping[str, int]]) -> dict[str, ServiceLevel]:
    """Unit -> its figures (tickets without a unit under :data:`NO_VALUE`, as the reports
    show them), with the whole hotline's under :data:`ALL_UNITS`."""
    levels = {
        unit or NO_VALUE: ServiceLevel(row["offered"], row["answered_within"])
        for unit, row in counts.items()
    }
    levels[ALL_UNITS] = ServiceLevel(
        sum(level.offered for level in levels.values()),
        sum(level.answered_within for level in levels.values()),
    )
    return levels


# -- what calls update ------------------------------------------------------------------------


class CallMetrics:
    """Live calls and finished calls by line and outcome; ``registry=None`` registers
    nothing (unit tests, a controller-less handler)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.live = Gauge(
            "ivr_calls_live", "Citizens' calls in the controller now.", registry=registry
        )
        self.finished = Counter(
            "ivr_calls",
            "Citizens' calls that ended, by line and the outcome on their ticket.",
            ["line", "outcome"],
            registry=registry,
        )

    @contextlib.contextmanager
    def live_call(self, line: str, outcome_of: Callable[[], str]) -> Iterator[None]:
        """Counts the call as live inside the block, then as finished with ``outcome_of()``
        (or :data:`FAILED_OUTCOME` when the block raised)."""
        self.live.inc()
        outcome = FAILED_OUTCOME
        try:
            yield
            outcome = outcome_of()
        finally:
            self.live.dec()
            self.finished.labels(line=line, outcome=outcome).inc()


# -- what a scrape reads ----------------------------------------------------------------------


# eq=False keeps identity hashing: the registry keys its collectors by them.
@dataclass(eq=False)
class HotlineCollector(Collector):
    """Reads the live state at each scrape. ``queue_units`` gives every queue of the routing
    and its unit (so idle queues show 0, not nothing)."""

    board: AgentBoard
    callers: QueueCallers
    queue_units: Callable[[], Mapping[str, str]]
    clock: Callable[[], datetime]
    answer_within_seconds: float
    window_minutes: float
    #: The last service level figures, per unit and for all (see :func:`service_levels`).
    levels: dict[str, ServiceLevel] = field(default_factory=dict)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        units = self.queue_units()
        waiting = GaugeMetricFamily(
            "ivr_queue_waiting_callers", "Callers waiting in the queue now.", labels=["queue"]
        )
        longest = GaugeMetricFamily(
            "ivr_queue_longest_wait_seconds",
            "Seconds the first caller in the queue has waited (0: nobody waits).",
            labels=["queue"],
        )
        for queue in sorted(set(units) | self.callers.queues()):
            waiting.add_metric([queue], self.callers.waiting(queue))
            longest.add_metric([queue], self.callers.longest_wait(queue, now))
        yield waiting
        yield longest

        counts = agents_by_unit(self.board.members(), units)
        families = {
            name: GaugeMetricFamily(f"ivr_agents_{name}", help_text, labels=["unit"])
            for name, help_text in (
                ("on_duty", "Agents with a registered phone, not logged out, per unit."),
                ("available", "Agents on duty, not paused, with an idle phone, per unit."),
                ("paused", "Agents on duty but paused, per unit."),
            )
        }
        for unit in sorted(set(units.values()) | set(counts)):
            figures = counts.get(unit, AgentCounts())
            families["on_duty"].add_metric([unit], figures.on_duty)
            families["available"].add_metric([unit], figures.available)
            families["paused"].add_metric([unit], figures.paused)
        yield from families.values()

        window = f"{self.window_minutes:g}m"
        level = GaugeMetricFamily(
            "ivr_service_level",
            f"Share of calls offered to a person in the last {window} that were answered "
            f"within {self.answer_within_seconds:g} s (NaN: none offered).",
            labels=["unit"],
        )
        offered = GaugeMetricFamily(
            "ivr_service_level_offered_calls",
            f"Calls offered to a person in the last {window}.",
            labels=["unit"],
        )
        within = GaugeMetricFamily(
            "ivr_service_level_answered_within_calls",
            f"Calls answered within {self.answer_within_seconds:g} s in the last {window}.",
            labels=["unit"],
        )
        for unit, row in sorted(self.levels.items()):
            level.add_metric([unit], math.nan if row.service_level is None else row.service_level)
            offered.add_metric([unit], row.offered)
            within.add_metric([unit], row.answered_within)
        yield level
        yield offered
        yield within

    async def refresh_service_level(self, store: TicketStore) -> None:
        """Count the window's tickets again (the database counts, so the cost does not grow
        with a busy hour's tickets)."""
        since = self.clock() - timedelta(minutes=self.window_minutes)
        counts = await store.count_since(
            since, Ticket.unit, service_level_conditions(self.answer_within_seconds)
        )
        self.levels = service_levels(counts)

    async def run_service_level(self, store: TicketStore) -> None:
        while True:
            try:
                await self.refresh_service_level(store)
            except Exception:
                log.exception("service level refresh failed; trying again later")
            await asyncio.sleep(SERVICE_LEVEL_REFRESH_SECONDS)


# -- the endpoint -----------------------------------------------------------------------------


class MetricsServer:
    """``GET /metrics``, one request per connection, answered in the event loop."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            status, content_type, body = self.response(head)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + body
            )
            await writer.drain()
        # A scraper that vanishes, dawdles or sends junk costs its own connection only.
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):  # fmt: skip
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def response(self, head: bytes) -> tuple[str, str, bytes]:
        """Status line, content type and body for one request head."""
        words = head.split(b"\r\n", 1)[0].split(b" ")
        if len(words) != 3 or words[0] != b"GET":
            return "405 Method Not Allowed", "text/plain", b"GET /metrics only\n"
        if words[1].split(b"?", 1)[0] != b"/metrics":
            return "404 Not Found", "text/plain", b"see /metrics\n"
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
