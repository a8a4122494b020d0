"""The tickets and their audit trail as tables, and their JSON form.

A ticket has two names, both unique and never reused:

- ``number``: the integer primary key, a global counter (1, 2, ... 42). Digits only, so a
  citizen can key it in on an old phone or read it out to an agent.
- ``id``: the human-readable ticket number ``T<YYYYMMDD>-<number, 6+ digits>``, e.g.
  ``T20261127-000042``, dated by the day the call came in (in the timezone of the
  ``created_at`` the controller passed, UTC when that was UTC). It is what agents and scripts
  quote, and the base name of the call's recording.

Every stored time is UTC and timezone-aware when read back, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ivr.tickets.lifecycle import Status

TICKET_ID_PREFIX = "T"


def format_ticket_id(number: int, created_at: datetime) -> str:
    return f"{TICKET_ID_PREFIX}{created_at:%Y%m%d}-{number:06d}"


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; SQLite keeps them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class Ticket(Base):
    __tablename__ = "tickets"
    # Every call reads its caller's latest tickets (the agent's screen, where they called
    # from): without it each call scanned the whole table, and a soak's calls began to fail
    # once the table held ~10,000 tickets.
    __table_args__ = (Index("ix_tickets_caller_number", "caller", "number"),)

    # The fields of the public JSON form, in its order.
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(160), unique=True)
    line: Mapped[str | None] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(160))
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    unit: Mapped[str | None] = mapped_column(String(128), index=True)
    level: Mapped[str | None] = mapped_column(String(32))
    agent: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True, default=Status.ACCEPTED.value)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    transferred_to: Mapped[str | None] = mapped_column(String(160))
    recording: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)

    # Extras.
    linkedid: Mapped[str] = mapped_column(String(150), unique=True)
    sip_call_id: Mapped[str | None] = mapped_column(String(255), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    caller_name: Mapped[str | None] = mapped_column(String(160))
    location: Mapped[str | None] = mapped_column(String(255))
    location_method: Mapped[str | None] = mapped_column(String(32))
    #: [{unit, level, queue, outcome}] in the order the router tried them.
    route_hops: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: How the call ended: agent, voice_message, transfer, goodbye, caller_hung_up, fallback...
    outcome: Mapped[str | None] = mapped_column(String(32))
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    from_110: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str | None] = mapped_column(String(16))
    deadline: Mapped[datetime | None] = mapped_column(index=True)
    #: When the deadline was first found missed; kept after resolution for evaluation.
    overdue_at: Mapped[datetime | None]
    rating: Mapped[str | None] = mapped_column(String(24))
    evaluation_score: Mapped[int | None] = mapped_column(Integer)
    #: The original ticket a merged duplicate was joined to.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    updated_at: Mapped[datetime]
    #: Outbound calls to the citizen: follow-up calls of a resolved ticket (counted afresh
    #: each time it is resolved) and callbacks of a missed call, each attempt counted
    #: before it is dialled; the audit trail tells how each went.
    followup_attempts: Mapped[int] = mapped_column(Integer, default=0)
    followup_last_at: Mapped[datetime | None]
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_last_at: Mapped[datetime | None]
    #: When the citizen answered the callback (an agent already on the line).
    callback_done_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One thing done to one ticket, by whom and when; never updated or deleted."""

    __tablename__ = "ticket_audit"

    entry: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


#: The issue's fields, first and in this order, in every JSON form of a ticket.
JSON_FIELDS: tuple[str, ...] = (
    "id", "number", "line", "caller", "channel", "category", "ivr_path", "unit", "level",
    "agent", "status", "emergency", "transferred_to", "recording", "created_at",
    "answered_at", "ended_at", "wait_seconds", "talk_seconds",
)  # fmt: skip
EXTRA_FIELDS: tuple[str, ...] = (
    "linkedid", "sip_call_id", "language", "caller_name", "location", "location_method",
    "route_hops", "variables", "outcome", "callback_requested", "from_110", "priority",
    "deadline", "overdue_at", "rating", "evaluation_score", "parent_id", "updated_at",
    "followup_attempts", "followup_last_at", "callback_attempts", "callback_last_at",
    "callback_done_at",
)  # fmt: skip


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def ticket_as_json(ticket: Ticket) -> dict[str, Any]:
    """The issue's fields first (ISO-8601 UTC times, null when unknown), then the extras."""
    return {name: _json_value(getattr(ticket, name)) for name in (*JSON_FIELDS, *EXTRA_FIELDS)}


def audit_as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "ticket": entry.ticket_id,
        "at": _json_value(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "from_status": entry.from_status,
        "to_status": entry.to_status,
        "note": entry.note,
    }
