"""Which calls to citizens are due now: follow-ups of resolved tickets (回访) and callbacks of
missed calls (回拨). Pure decision code: the dialer (ivr.outbound.dialer) reads the tickets
and the agent board, asks here, and places the calls.

- A follow-up is due for a resolved ticket with a dialable caller, inside the calling hours,
  when it has attempts left and the retry interval since the last one has passed.
- A callback is due on the same terms for an ended call marked for one (abandoned in a queue,
  a voice message, nobody available) that no callback reached yet, and only while an agent
  of the ticket's unit is idle: the agent is called first, so a citizen never answers to
  wait in a queue. Each idle agent is given one callback per round. A citizen who got
  through to an agent on a later call is owed no callback any more (settled_callbacks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ivr.routing import RoutingTables, queue_name
from ivr.routing.hours import WeeklySchedule
from ivr.settings import CallingPolicy, Settings
from ivr.tickets.lifecycle import FINAL_STATUSES, OutboundKind, Status

#: What may be dialled: digits only (an optional leading +), so nothing a caller sent can
#: reach a dial string but a plain number.
_DIALABLE = re.compile(r"^\+?([0-9]{3,20})$")


def dialable_number(caller: str | None) -> str | None:
    """The number to dial back, or None for anonymous or odd caller ids."""
    match = _DIALABLE.match((caller or "").strip())
    return match.group(1) if match else None


@dataclass(frozen=True)
class RetryPolicy:
    calling_hours: WeeklySchedule
    max_attempts: int
    retry_after: timedelta


class OutboundTicket(Protocol):
    """The ticket fields the planner reads (ivr.tickets.Ticket has them all)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def caller(self) -> str | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def callback_requested(self) -> bool: ...
    @property
    def callback_done_at(self) -> datetime | None: ...
    @property
    def followup_attempts(self) -> int: ...
    @property
    def followup_last_at(self) -> datetime | None: ...
    @property
    def callback_attempts(self) -> int: ...
    @property
    def callback_last_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class OutboundCall:
    kind: OutboundKind
    ticket_id: str
    number: str
    #: 1 for the first call, counting the attempts already made.
    attempt: int
    #: Callbacks: the queue of the ticket's unit whose agent is called first.
    queue: str | None = None


def retry_policy(settings: CallingPolicy) -> RetryPolicy | None:
    """The policy of the ``followup`` or ``callbacks`` settings; None when switched off."""
    if not settings.enabled:
        return None
    return RetryPolicy(
        calling_hours=settings.schedule,
        max_attempts=settings.max_attempts,
        retry_after=timedelta(seconds=settings.retry_seconds),
    )


#: The next attempt of a call never tried: at once.
AT_ONCE = datetime.min.replace(tzinfo=UTC)


def next_attempt_at(
    attempts: int, last_at: datetime | None, policy: RetryPolicy
) -> datetime | None:
    """When the next attempt may be made, calling hours aside (AT_ONCE for a first call);
    None once the attempts are spent."""
    if attempts >= policy.max_attempts:
        return None
    return AT_ONCE if last_at is None else last_at + policy.retry_after


def attempt_due(
    attempts: int, last_at: datetime | None, policy: RetryPolicy, now: datetime
) -> bool:
    due = next_attempt_at(attempts, last_at, policy)
    return due is not None and due <= now


def callback_queue(tables: RoutingTables, ticket: OutboundTicket) -> str:
    """The queue of the unit the ticket belongs to (where it was queued, else where the
    caller was located, else the city), in the caller's language when the unit has it."""
    unit = tables.units.get(ticket.unit or "") or tables.units.get(ticket.location or "")
    if unit is None:
        unit = tables.units[tables.city]
    language = ticket.language if ticket.language in unit.languages else unit.languages[0]
    return queue_name(unit.code, language)


def followup_due(ticket: OutboundTicket, policy: RetryPolicy, now: datetime) -> bool:
    return (
        Status(ticket.status) is Status.RESOLVED
        and dialable_number(ticket.caller) is not None
        and attempt_due(ticket.followup_attempts, ticket.followup_last_at, policy, now)
    )


def callback_owed(ticket: OutboundTicket) -> bool:
    return (
        ticket.callback_requested
        and ticket.callback_done_at is None
        and ticket.ended_at is not None
        and Status(ticket.status) not in FINAL_STATUSES
        and dialable_number(ticket.caller) is not None
    )


def settled_callbacks(
    tickets: Iterable[OutboundTicket], last_answered: Mapping[str, datetime]
) -> list[str]:
    """Callbacks no longer owed: the citizen called again and an agent answered after the
    missed call ended. ``last_answered`` maps caller numbers to their latest answer."""
    settled = []
    for ticket in tickets:
        answered = last_answered.get(ticket.caller or "")
        if callback_owed(ticket) and answered is not None:
            assert ticket.ended_at is not None
            if answered > ticket.ended_at:
                settled.append(ticket.id)
    return settled


def plan_calls(
    tickets: Iterable[OutboundTicket],
    *,
    now: datetime,
    tables: RoutingTables,
    followup: RetryPolicy | None,
    callbacks: RetryPolicy | None,
    idle_agents: Callable[[str], int],
    busy: frozenset[str] = frozenset(),
) -> list[OutboundCall]:
    """The calls to place now, in the order given (oldest ticket first). ``busy`` names
    tickets with a call still under way; ``idle_agents(queue)`` counts the agents of a
    queue free to take a call right now. A None policy switches that kind of call off."""
    local = now.astimezone(tables.timezone)
    followups_open = followup is not None and followup.calling_hours.contains(local)
    callbacks_open = callbacks is not None and callbacks.calling_hours.contains(local)
    idle_left: dict[str, int] = {}
    calls: list[OutboundCall] = []
    for ticket in tickets:
        if ticket.id in busy:
            continue
        number = dialable_number(ticket.caller)
        if number is None:
            continue
        if followups_open and followup is not None and followup_due(ticket, followup, now):
            calls.append(
                OutboundCall(
                    OutboundKind.FOLLOW_UP, ticket.id, number, ticket.followup_attempts + 1
                )
            )
            continue
        if not (callbacks_open and callbacks is not None and callback_owed(ticket)):
            continue
        if not attempt_due(ticket.callback_attempts, ticket.callback_last_at, callbacks, now):
            continue
        queue = callback_queue(tables, ticket)
        if queue not in idle_left:
            idle_left[queue] = idle_agents(queue)
        if idle_left[queue] <= 0:
            continue
        idle_left[queue] -= 1
        calls.append(
            OutboundCall(
                OutboundKind.CALLBACK, ticket.id, number, ticket.callback_attempts + 1, queue
            )
        )
    return calls


@dataclass(frozen=True)
class OwedCall:
    """A call a ticket is owed, for people (``ivr tickets calls``)."""

    kind: OutboundKind
    ticket_id: str
    caller: str | None
    unit: str | None
    attempts: int
    last_at: datetime | None
    #: AT_ONCE, a time, or None once the attempts are spent.
    next_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "ticket_id": self.ticket_id,
            "kind": self.kind.value,
            "caller": self.caller,
            "unit": self.unit,
            "attempts": self.attempts,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "next_at": None if self.next_at is None
            else "now" if self.next_at == AT_ONCE else self.next_at.isoformat(),
        }


def owed_calls_of(tickets: Iterable[OutboundTicket], settings: Settings) -> list[OwedCall]:
    """Every follow-up and callback the tickets are owed under ``settings``."""
    followup = retry_policy(settings.followup)
    callbacks = retry_policy(settings.callbacks)
    owed = []
    for ticket in tickets:
        if (
            followup is not None
            and Status(ticket.status) is Status.RESOLVED
            and dialable_number(ticket.caller) is not None
        ):
            attempts, last_at = ticket.followup_attempts, ticket.followup_last_at
            owed.append(OwedCall(OutboundKind.FOLLOW_UP, ticket.id, ticket.caller, ticket.unit,
                                 attempts, last_at, next_attempt_at(attempts, last_at, followup)))
        if callbacks is not None and callback_owed(ticket):
            attempts, last_at = ticket.callback_attempts, ticket.callback_last_at
            owed.append(OwedCall(OutboundKind.CALLBACK, ticket.id, ticket.caller, ticket.unit,
                                 attempts, last_at, next_attempt_at(attempts, last_at, callbacks)))
    return owed
