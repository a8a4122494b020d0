"""What a call handler may use, handed to it by the controller: the live deployment
snapshot, the ticket writer, the agent board, the event notifier and the clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ivr.agent_board import AgentBoard
from ivr.events import EventPublisher
from ivr.home import Home
from ivr.live_metrics import CallMetrics
from ivr.menu import MenuTree
from ivr.recordings import RecordingSpace
from ivr.routing import RoutingTables
from ivr.settings import Settings


class DeploymentView(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def routing(self) -> RoutingTables: ...
    @property
    def menus(self) -> MenuTree: ...


class DeploymentSource(Protocol):
    @property
    def current(self) -> DeploymentView: ...


class TicketWriter(Protocol):
    """The ticket store as calls write it, by linkedid. A write that met a database
    outage is spooled and returns None instead of the ticket id."""

    async def open_call(self, linkedid: str, **fields: Any) -> str | None: ...
    async def ticket_id_of(self, linkedid: str) -> str | None: ...
    async def update_call(self, linkedid: str, **fields: Any) -> str | None: ...
    async def append_path(self, linkedid: str, node_ids: Sequence[str]) -> str | None: ...
    async def append_route_hop(
        self,
        linkedid: str,
        *,
        unit: str,
        level: str | None = None,
        queue: str | None = None,
        outcome: str | None = None,
    ) -> str | None: ...
    def forget_call(self, linkedid: str) -> None:
        """The call is over: what the writer keeps of it to write it faster may go."""


class TicketHistory(Protocol):
    async def caller_history(self, caller: str, limit: int = 5) -> list[dict[str, Any]]: ...
    async def caller_location(self, caller: str) -> str | None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def clock_starting_at(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and runs on in real time: demos and tests can show
    the night menu at noon, or office hours at night."""
    offset = start - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@dataclass
class CallServices:
    home: Home
    deployments: DeploymentSource
    tickets: TicketWriter
    history: TicketHistory
    agents: AgentBoard
    #: The home as the PBX sees it: the prefix of prompt and recording paths it is given.
    pbx_home: str
    notifier: EventPublisher
    clock: Callable[[], datetime] = utc_now
    #: Calls an agent has answered (AMI AgentConnect), while they last (linkedid).
    answered_calls: set[str] = field(default_factory=set)
    #: Calls the hotline placed to citizens (ivr.outbound), linkedid -> ticket id: their
    #: queue events are about that ticket, not about a call with a ticket of its own.
    outbound_calls: dict[str, str] = field(default_factory=dict)
    recording_space: RecordingSpace = field(default_factory=RecordingSpace)
    #: When each emergency caller pressed the key, until the 110 centre answers (linkedid).
    emergency_started: dict[str, datetime] = field(default_factory=dict)
    #: Live and finished calls for /metrics; registered nowhere unless the controller says.
    call_metrics: CallMetrics = field(default_factory=lambda: CallMetrics(None))
