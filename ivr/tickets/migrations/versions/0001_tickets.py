"""Tickets and their audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# A migration is frozen history: plain types here, not the model's, so later model changes
# cannot rewrite what this revision created.
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(160), nullable=False),
        sa.Column("line", sa.String(64)),
        sa.Column("caller", sa.String(128)),
        sa.Column("channel", sa.String(160)),
        sa.Column("category", sa.String(64)),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("unit", sa.String(128)),
        sa.Column("level", sa.String(32)),
        sa.Column("agent", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("transferred_to", sa.String(160)),
        sa.Column("recording", sa.String(255)),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("answered_at", Time),
        sa.Column("ended_at", Time),
        sa.Column("wait_seconds", sa.Float()),
        sa.Column("talk_seconds", sa.Float()),
        sa.Column("linkedid", sa.String(150), nullable=False),
        sa.Column("sip_call_id", sa.String(255)),
        sa.Column("language", sa.String(16)),
        sa.Column("caller_name", sa.String(160)),
        sa.Column("location", sa.String(255)),
        sa.Column("location_method", sa.String(32)),
        sa.Column("route_hops", sa.JSON(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("callback_requested", sa.Boolean(), nullable=False),
        sa.Column("from_110", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.String(16)),
        sa.Column("deadline", Time),
        sa.Column("overdue_at", Time),
        sa.Column("rating", sa.String(24)),
        sa.Column("evaluation_score", sa.Integer()),
        sa.Column("parent_id", sa.String(160), sa.ForeignKey("tickets.id")),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("id", name="uq_tickets_id"),
        sa.UniqueConstraint("linkedid", name="uq_tickets_linkedid"),
    )
    for column in ("category", "unit", "status", "created_at", "sip_call_id", "deadline",
                   "parent_id"):
        op.create_index(f"ix_tickets_{column}", "tickets", [column])
    op.create_table(
        "ticket_audit",
        sa.Column("entry", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(160), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_ticket_audit_ticket_id", "ticket_audit", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("ticket_audit")
    op.drop_table("tickets")
