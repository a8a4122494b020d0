"""Every legal and every illegal transition of the ticket state machine, written out here
independently of the table in ivr.tickets.lifecycle, plus overdue with a fixed clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ivr.tickets.errors import IllegalTransition, TicketError
from ivr.tickets.lifecycle import (
    Action,
    Rating,
    Status,
    allowed_actions,
    check_merge,
    find_overdue,
    is_overdue,
    next_status,
    parse_rating,
)

S, A = Status, Action

#: The spec: (status, action) -> next status; follow_up is listed for a satisfied rating.
LEGAL: dict[tuple[Status, Action], Status] = {
    (S.ACCEPTED, A.ASSIGN): S.ASSIGNED,
    (S.ACCEPTED, A.RESOLVE): S.RESOLVED,
    (S.ACCEPTED, A.CLOSE): S.CLOSED,
    (S.ACCEPTED, A.MERGE): S.MERGED,
    (S.ACCEPTED, A.NOTE): S.ACCEPTED,
    (S.ASSIGNED, A.DISPATCH): S.ASSIGNED,
    (S.ASSIGNED, A.RETURN): S.RETURNED,
    (S.ASSIGNED, A.START): S.IN_PROGRESS,
    (S.ASSIGNED, A.RESOLVE): S.RESOLVED,
    (S.ASSIGNED, A.MERGE): S.MERGED,
    (S.ASSIGNED, A.NOTE): S.ASSIGNED,
    (S.IN_PROGRESS, A.DISPATCH): S.ASSIGNED,
    (S.IN_PROGRESS, A.RETURN): S.RETURNED,
    (S.IN_PROGRESS, A.RESOLVE): S.RESOLVED,
    (S.IN_PROGRESS, A.MERGE): S.MERGED,
    (S.IN_PROGRESS, A.NOTE): S.IN_PROGRESS,
    (S.RETURNED, A.ASSIGN): S.ASSIGNED,
    (S.RETURNED, A.RESOLVE): S.RESOLVED,
    (S.RETURNED, A.MERGE): S.MERGED,
    (S.RETURNED, A.NOTE): S.RETURNED,
    (S.REOPENED, A.ASSIGN): S.ASSIGNED,
    (S.REOPENED, A.DISPATCH): S.ASSIGNED,
    (S.REOPENED, A.RETURN): S.RETURNED,
    (S.REOPENED, A.START): S.IN_PROGRESS,
    (S.REOPENED, A.RESOLVE): S.RESOLVED,
    (S.REOPENED, A.NOTE): S.REOPENED,
    (S.RESOLVED, A.FOLLOW_UP): S.FOLLOWED_UP,
    (S.RESOLVED, A.NOTE): S.RESOLVED,
    (S.FOLLOWED_UP, A.EVALUATE): S.EVALUATED,
    (S.FOLLOWED_UP, A.NOTE): S.FOLLOWED_UP,
    (S.EVALUATED, A.CLOSE): S.CLOSED,
    (S.EVALUATED, A.NOTE): S.EVALUATED,
    (S.CLOSED, A.NOTE): S.CLOSED,
    (S.MERGED, A.NOTE): S.MERGED,
}
ILLEGAL = [pair for pair in itertools.product(Status, Action) if pair not in LEGAL]


@pytest.mark.parametrize(("status", "action"), list(LEGAL), ids=lambda v: str(v))
def test_legal_transition(status: Status, action: Action) -> None:
    rating = Rating.SATISFIED if action is Action.FOLLOW_UP else None
    assert next_status("T20261127-000001", status, action, rating=rating) is LEGAL[status, action]


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=lambda v: str(v))
def test_illegal_transition_names_ticket_status_and_allowed_actions(
    status: Status, action: Action
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        next_status("T20261127-000007", status, action, rating=Rating.SATISFIED)
    message = str(caught.value)
    assert "T20261127-000007" in message
    assert f"is {status.value}" in message
    assert f"cannot {action.value}" in message
    allowed = [a.value for (s, a) in LEGAL if s is status]
    assert message.endswith("allowed actions: " + ", ".join(allowed))
    assert caught.value.allowed == tuple(Action(a) for a in allowed)


def test_table_and_spec_agree_on_allowed_actions() -> None:
    for status in Status:
        assert set(allowed_actions(status)) == {a for (s, a) in LEGAL if s is status}


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        (Rating.SATISFIED, Status.FOLLOWED_UP),
        (Rating.BASICALLY_SATISFIED, Status.FOLLOWED_UP),
        (Rating.DISSATISFIED, Status.REOPENED),
    ],
)
def test_follow_up_rating_decides(rating: Rating, expected: Status) -> None:
    assert next_status("T1", Status.RESOLVED, Action.FOLLOW_UP, rating=rating) is expected


def test_follow_up_needs_rating() -> None:
    with pytest.raises(TicketError, match="needs a rating"):
        next_status("T1", Status.RESOLVED, Action.FOLLOW_UP)


def test_unknown_action_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="cannot fly \\(no such action\\)"):
        next_status("T1", "accepted", "fly")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("satisfied", Rating.SATISFIED),
        (" Basically_Satisfied ", Rating.BASICALLY_SATISFIED),
        ("basically-satisfied", Rating.BASICALLY_SATISFIED),
        ("满意", Rating.SATISFIED),
        ("基本满意", Rating.BASICALLY_SATISFIED),
        ("不满意", Rating.DISSATISFIED),
    ],
)
def test_parse_rating(text: str, expected: Rating) -> None:
    assert parse_rating(text) is expected


def test_parse_rating_rejects_unknown() -> None:
    with pytest.raises(TicketError, match="unknown rating 'meh'; expected one of satisfied"):
        parse_rating("meh")


def test_merge_checks() -> None:
    check_merge("T2", Status.ACCEPTED, "T1", Status.ASSIGNED)
    with pytest.raises(TicketError, match="into itself"):
        check_merge("T1", Status.ACCEPTED, "T1", Status.ACCEPTED)
    with pytest.raises(TicketError, match="T1 is itself merged"):
        check_merge("T2", Status.ACCEPTED, "T1", Status.MERGED)
    with pytest.raises(IllegalTransition, match="T2 is closed: cannot merge"):
        check_merge("T2", Status.CLOSED, "T1", Status.ACCEPTED)


@dataclass
class FakeTicket:
    name: str
    status: str
    deadline: datetime | None


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_find_overdue_with_fixed_clock() -> None:
    past, future = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)
    tickets = [
        FakeTicket("late-assigned", "assigned", past),
        FakeTicket("late-in-progress", "in_progress", past),
        FakeTicket("late-returned", "returned", past),
        FakeTicket("late-reopened", "reopened", past),
        FakeTicket("exactly-now", "assigned", NOW),
        FakeTicket("in-time", "assigned", future),
        FakeTicket("no-deadline", "accepted", None),
        FakeTicket("resolved-late", "resolved", past),
        FakeTicket("closed", "closed", past),
        FakeTicket("merged", "merged", past),
    ]
    assert [t.name for t in find_overdue(tickets, NOW)] == [
        "late-assigned",
        "late-in-progress",
        "late-returned",
        "late-reopened",
        "exactly-now",
    ]
    assert not is_overdue(tickets[5], NOW)
    assert is_overdue(tickets[5], NOW + timedelta(minutes=1))
