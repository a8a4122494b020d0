"""What can go wrong with a ticket, each as one clear sentence for an agent or a script."""

from __future__ import annotations

from collections.abc import Iterable


class TicketError(Exception):
    """Base of every ticket error; the CLI prints its message on one line and exits 1."""


class UnknownTicket(TicketError):
    def __init__(self, ticket: str) -> None:
        self.ticket = ticket
        super().__init__(f"unknown ticket {ticket}")


class IllegalTransition(TicketError):
    """An action that the ticket's current status does not allow."""

    def __init__(
        self, ticket: str, status: str, action: str, allowed: Iterable[str], reason: str = ""
    ) -> None:
        self.ticket = ticket
        self.status = status
        self.action = action
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) or "none (final status)"
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"ticket {ticket} is {status}: cannot {action}{why}; allowed actions: {allowed_text}"
        )


class InvalidTicketUpdate(TicketError):
    """A field the call controller may not set, or a value of the wrong kind."""
