"""What the reports read of a ticket, as a plain immutable record, and how a call ended in the
terms of a call centre (answered, abandoned, offered...).

A :class:`TicketRecord` is built from a stored :class:`~ivr.tickets.model.Ticket` plus its audit
rows (:func:`record_of`), or by hand in tests and by the synthetic generator. The audit rows give
what the ticket row alone does not keep: when the matter was last resolved (for "resolved on
time") and which units sent it back (退单, for the returned-ticket rate of the ranking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, or_
from sqlalchemy.sql.elements import ColumnElement

from ivr.tickets.lifecycle import Action, Rating, Status
from ivr.tickets.model import AuditEntry, Ticket

#: Ticket outcomes of a call a person took (``agent`` is what CDR reconciliation writes).
ANSWERED_OUTCOMES: frozenset[str] = frozenset({"answered", "agent"})
#: Outcomes of a caller who wanted a person and got none, without hanging up in a queue.
UNANSWERED_OUTCOMES: frozenset[str] = frozenset(
    {"voice_message", "nobody_available", "fallback", "callback_chosen"}
)
ABANDONED_OUTCOME = "abandoned"
#: Where a call ended for the caller, by ticket outcome: a person, a voice message (taken,
#: or offered to a silent caller), a callback chosen while waiting, 110, or the menus'
#: polite goodbye. DTMF fuzzing checks
#: that every call ends in one of these.
CALL_ENDS: dict[str, str] = {
    "answered": "agent",
    "agent": "agent",
    "voice_message": "voice message",
    "nobody_available": "voice message",
    "callback_chosen": "callback",
    "transferred_110": "110",
    "goodbye": "goodbye",
    "failure": "goodbye",
}
HUNG_UP_OUTCOME = "caller_hung_up"
#: Ratings that count as satisfied: the published rate (满意率) counts 满意 and 基本满意.
SATISFIED_RATINGS: frozenset[str] = frozenset(
    {Rating.SATISFIED.value, Rating.BASICALLY_SATISFIED.value}
)
#: Statuses in which the matter counts as resolved by its unit.
RESOLVED_STATUSES: frozenset[str] = frozenset(
    s.value for s in (Status.RESOLVED, Status.FOLLOWED_UP, Status.EVALUATED, Status.CLOSED)
)
#: The store's audit note of a return starts "by <unit>" (TicketStore.return_).
_RETURNED_BY = re.compile(r"^by ([A-Za-z0-9_.-]+)")
UNKNOWN_UNIT = "(unknown)"


class Disposition(StrEnum):
    """How a call went, as far as being offered to a person is concerned."""

    ANSWERED = "answered"
    #: Hung up while waiting in a queue.
    ABANDONED = "abandoned"
    #: Wanted a person, none took the call: voice message, nobody available, fallback,
    #: a callback chosen instead of waiting on.
    UNANSWERED = "unanswered"
    #: Never asked for a person: served by the menus, handed to 110, hung up in a menu.
    NOT_OFFERED = "not_offered"


@dataclass(frozen=True)
class TicketRecord:
    id: str
    created_at: datetime
    line: str | None = None
    caller: str | None = None
    category: str | None = None
    unit: str | None = None
    level: str | None = None
    agent: str | None = None
    status: str = Status.ACCEPTED.value
    outcome: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    #: Territorial unit code where the caller is.
    location: str | None = None
    deadline: datetime | None = None
    overdue_at: datetime | None = None
    rating: str | None = None
    #: Number of queues the router tried.
    route_hops: int = 0
    callback_requested: bool = False
    emergency: bool = False
    #: When the matter was last resolved (from the audit trail); None if never or unknown.
    resolved_at: datetime | None = None
    #: The units that sent the ticket back (退单), one per return, oldest first.
    returned_by: tuple[str, ...] = ()

    @property
    def disposition(self) -> Disposition:
        if self.answered_at is not None or self.outcome in ANSWERED_OUTCOMES:
            return Disposition.ANSWERED
        queued = self.route_hops > 0
        if self.outcome == ABANDONED_OUTCOME or (queued and self.outcome == HUNG_UP_OUTCOME):
            return Disposition.ABANDONED
        if queued or self.outcome in UNANSWERED_OUTCOMES:
            return Disposition.UNANSWERED
        return Disposition.NOT_OFFERED

    @property
    def offered(self) -> bool:
        return self.disposition is not Disposition.NOT_OFFERED

    @property
    def is_resolved(self) -> bool:
        return self.status in RESOLVED_STATUSES

    def is_due(self, now: datetime) -> bool:
        """Whether the on-time count judges this ticket: it has a time limit, and it was
        resolved or the limit has passed. Merged duplicates are the original's business."""
        if self.deadline is None or self.status == Status.MERGED.value:
            return False
        return self.is_resolved or self.deadline <= now

    def resolved_on_time(self) -> bool:
        """Resolved, and by the deadline. Without the audit time, a resolved ticket that was
        never flagged overdue counts as on time."""
        if not self.is_resolved or self.deadline is None:
            return False
        if self.resolved_at is not None:
            return self.resolved_at <= self.deadline
        return self.overdue_at is None

    @property
    def satisfied(self) -> bool:
        return self.rating in SATISFIED_RATINGS


# -- the same judgements in SQL, for counts the database makes (tests prove them equal) -----


def _answered_sql() -> ColumnElement[bool]:
    return or_(Ticket.answered_at.is_not(None), Ticket.outcome.in_(sorted(ANSWERED_OUTCOMES)))


def offered_sql() -> ColumnElement[bool]:
    """SQL for :attr:`TicketRecord.offered`: answered, queued, or an outcome that wanted a
    person (abandoned, unanswered)."""
    return or_(
        _answered_sql(),
        func.json_array_length(Ticket.route_hops) > 0,
        Ticket.outcome.in_(sorted({ABANDONED_OUTCOME, *UNANSWERED_OUTCOMES})),
    )


def answered_within_sql(seconds: float) -> ColumnElement[bool]:
    """SQL for "answered, after waiting at most ``seconds``" (the service level's numerator,
    as :func:`ivr.reports.metrics.measure` counts it)."""
    return _answered_sql() & Ticket.wait_seconds.is_not(None) & (Ticket.wait_seconds <= seconds)


def _returning_unit(entry: AuditEntry) -> str:
    found = _RETURNED_BY.match(entry.note or "")
    return found.group(1) if found else UNKNOWN_UNIT


def record_of(ticket: Ticket, history: Iterable[AuditEntry] = ()) -> TicketRecord:
    """The record of a stored ticket; ``history`` is its audit trail (any order)."""
    entries = sorted(history, key=lambda entry: (entry.at, entry.entry or 0))
    resolves = [entry.at for entry in entries if entry.action == Action.RESOLVE.value]
    returns = tuple(
        _returning_unit(entry) for entry in entries if entry.action == Action.RETURN.value
    )
    return TicketRecord(
        id=ticket.id,
        created_at=ticket.created_at,
        line=ticket.line,
        caller=ticket.caller,
        category=ticket.category,
        unit=ticket.unit,
        level=ticket.level,
        agent=ticket.agent,
        status=ticket.status,
        outcome=ticket.outcome,
        answered_at=ticket.answered_at,
        ended_at=ticket.ended_at,
        wait_seconds=ticket.wait_seconds,
        talk_seconds=ticket.talk_seconds,
        location=ticket.location,
        deadline=ticket.deadline,
        overdue_at=ticket.overdue_at,
        rating=ticket.rating,
        route_hops=len(ticket.route_hops or ()),
        callback_requested=bool(ticket.callback_requested),
        emergency=bool(ticket.emergency),
        resolved_at=resolves[-1] if resolves else None,
        returned_by=returns,
    )
