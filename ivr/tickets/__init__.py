"""Tickets: one per call (keyed by Asterisk's linkedid), its closed-loop lifecycle
(accept → assign → resolve → follow up → evaluate → close) and its audit trail."""

from ivr.tickets.deadlines import DEFAULT_POLICY, DeadlinePolicy, load_deadlines
from ivr.tickets.errors import IllegalTransition, InvalidTicketUpdate, TicketError, UnknownTicket
from ivr.tickets.lifecycle import (
    Action,
    OutboundKind,
    Rating,
    Status,
    find_overdue,
    next_status,
)
from ivr.tickets.model import AuditEntry, Ticket, audit_as_json, ticket_as_json
from ivr.tickets.store import TicketStore, upgrade_schema

__all__ = [
    "DEFAULT_POLICY",
    "Action",
    "AuditEntry",
    "DeadlinePolicy",
    "IllegalTransition",
    "InvalidTicketUpdate",
    "OutboundKind",
    "Rating",
    "Status",
    "Ticket",
    "TicketError",
    "TicketStore",
    "UnknownTicket",
    "audit_as_json",
    "find_overdue",
    "load_deadlines",
    "next_status",
    "ticket_as_json",
    "upgrade_schema",
]
