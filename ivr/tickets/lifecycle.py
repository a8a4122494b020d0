"""The closed loop of a ticket (受理 → 交办 → 办结 → 回访 → 考评), as a pure state machine.

accepted (the call) -> assigned (to a unit; deadline set) -> in_progress -> resolved
-> followed_up -> evaluated -> closed, plus:

- returned: the unit sends a misrouted ticket back (退单) with a reason; the centre assigns
  it again (改派) and the new unit gets a fresh deadline.
- dispatched: a unit hands the ticket up or down a level (上报/派发); the status stays
  ``assigned`` and the deadline is kept, because the citizen's time limit does not restart
  when the matter moves between levels.
- merged: a duplicate joined to its original; final.
- reopened: a dissatisfied follow-up (不满意) sends the ticket back to its unit with a fresh
  deadline.
- accepted tickets may be resolved on the call (a consultation answered at once) or closed
  without a matter (silent call, wrong number, hang-up in the menu).

Overdue is a condition, not a status: a ticket whose deadline has passed while its status is
one of ``RUNNING_STATUSES``. Keeping it out of the status means an overdue ticket can still be
worked on with the ordinary actions; the store records the moment it was first found overdue
(``overdue_at`` plus an ``overdue`` audit row) so evaluation can count late tickets after
they are resolved.

No I/O here: the store calls these functions and writes what they decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from ivr.tickets.errors import IllegalTransition, TicketError


class Status(StrEnum):
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FOLLOWED_UP = "followed_up"
    EVALUATED = "evaluated"
    CLOSED = "closed"
    RETURNED = "returned"
    MERGED = "merged"
    REOPENED = "reopened"


class Action(StrEnum):
    ASSIGN = "assign"
    DISPATCH = "dispatch"
    RETURN = "return"
    START = "start"
    RESOLVE = "resolve"
    FOLLOW_UP = "follow_up"
    EVALUATE = "evaluate"
    CLOSE = "close"
    MERGE = "merge"
    NOTE = "note"


class Rating(StrEnum):
    """The follow-up call's three answers (满意 / 基本满意 / 不满意)."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


class OutboundKind(StrEnum):
    """The calls the hotline places to a citizen: a follow-up of a resolved ticket (回访)
    and a callback of a call nobody took (回拨)."""

    FOLLOW_UP = "followup"
    CALLBACK = "callback"


_RATING_ALIASES: Mapping[str, Rating] = {
    "满意": Rating.SATISFIED,
    "基本满意": Rating.BASICALLY_SATISFIED,
    "不满意": Rating.DISSATISFIED,
    "basically-satisfied": Rating.BASICALLY_SATISFIED,
}

#: Statuses in which a unit's deadline runs, so the ticket can become overdue.
RUNNING_STATUSES: frozenset[Status] = frozenset(
    {Status.ASSIGNED, Status.IN_PROGRESS, Status.RETURNED, Status.REOPENED}
)
FINAL_STATUSES: frozenset[Status] = frozenset({Status.CLOSED, Status.MERGED})

S, A = Status, Action
#: status -> action -> next status. FOLLOW_UP's target depends on the rating (see next_status).
TRANSITIONS: Mapping[Status, Mapping[Action, Status]] = {
    S.ACCEPTED: {
        A.ASSIGN: S.ASSIGNED,
        A.RESOLVE: S.RESOLVED,
        A.CLOSE: S.CLOSED,
        A.MERGE: S.MERGED,
        A.NOTE: S.ACCEPTED,
    },
    S.ASSIGNED: {
        A.DISPATCH: S.ASSIGNED,
        A.RETURN: S.RETURNED,
        A.START: S.IN_PROGRESS,
        A.RESOLVE: S.RESOLVED,
        A.MERGE: S.MERGED,
        A.NOTE: S.ASSIGNED,
    },
    S.IN_PROGRESS: {
        A.DISPATCH: S.ASSIGNED,
        A.RETURN: S.RETURNED,
        A.RESOLVE: S.RESOLVED,
        A.MERGE: S.MERGED,
        A.NOTE: S.IN_PROGRESS,
    },
    S.RETURNED: {
        A.ASSIGN: S.ASSIGNED,
        A.RESOLVE: S.RESOLVED,
        A.MERGE: S.MERGED,
        A.NOTE: S.RETURNED,
    },
    S.REOPENED: {
        A.ASSIGN: S.ASSIGNED,
        A.DISPATCH: S.ASSIGNED,
        A.RETURN: S.RETURNED,
        A.START: S.IN_PROGRESS,
        A.RESOLVE: S.RESOLVED,
        A.NOTE: S.REOPENED,
    },
    S.RESOLVED: {A.FOLLOW_UP: S.FOLLOWED_UP, A.NOTE: S.RESOLVED},
    S.FOLLOWED_UP: {A.EVALUATE: S.EVALUATED, A.NOTE: S.FOLLOWED_UP},
    S.EVALUATED: {A.CLOSE: S.CLOSED, A.NOTE: S.EVALUATED},
    S.CLOSED: {A.NOTE: S.CLOSED},
    S.MERGED: {A.NOTE: S.MERGED},
}
del S, A

#: Actions that give the ticket a (new) deadline counted from the moment they happen.
DEADLINE_STARTING_ACTIONS: frozenset[Action] = frozenset({Action.ASSIGN})


def allowed_actions(status: Status | str) -> tuple[Action, ...]:
    return tuple(TRANSITIONS[Status(status)])


def parse_rating(text: str) -> Rating:
    """A rating as an agent types it: satisfied / basically_satisfied / dissatisfied or 满意…"""
    cleaned = text.strip().lower()
    if cleaned in _RATING_ALIASES:
        return _RATING_ALIASES[cleaned]
    try:
        return Rating(cleaned)
    except ValueError:
        choices = ", ".join(r.value for r in Rating)
        raise TicketError(f"unknown rating {text!r}; expected one of {choices}") from None


def next_status(
    ticket: str,
    status: Status | str,
    action: Action | str,
    *,
    rating: Rating | None = None,
) -> Status:
    """The status after ``action``; raises IllegalTransition naming what is allowed instead."""
    current = Status(status)
    try:
        wanted = Action(action)
    except ValueError:
        raise IllegalTransition(
            ticket, current, str(action), allowed_actions(current), "no such action"
        ) from None
    targets = TRANSITIONS[current]
    if wanted not in targets:
        raise IllegalTransition(ticket, current, wanted, targets)
    if wanted is Action.FOLLOW_UP:
        if rating is None:
            raise TicketError(f"ticket {ticket}: a follow-up needs a rating")
        return Status.REOPENED if rating is Rating.DISSATISFIED else Status.FOLLOWED_UP
    return targets[wanted]


def check_merge(
    duplicate: str, duplicate_status: Status | str, original: str, original_status: Status | str
) -> None:
    """A duplicate may join an original that is itself still a ticket of its own."""
    if duplicate == original:
        raise TicketError(f"ticket {duplicate} cannot be merged into itself")
    next_status(duplicate, duplicate_status, Action.MERGE)
    if Status(original_status) is Status.MERGED:
        raise TicketError(
            f"ticket {original} is itself merged; merge {duplicate} into its original instead"
        )


class HasDeadline(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def deadline(self) -> datetime | None: ...


T = TypeVar("T", bound=HasDeadline)


def is_overdue(ticket: HasDeadline, now: datetime) -> bool:
    return (
        ticket.deadline is not None
        and Status(ticket.status) in RUNNING_STATUSES
        and ticket.deadline <= now
    )


def find_overdue(tickets: Iterable[T], now: datetime) -> list[T]:
    """The tickets whose unit's deadline has passed at ``now`` while still being worked on."""
    return [ticket for ticket in tickets if is_overdue(ticket, now)]
