"""An index for the reads every call makes of its caller's latest tickets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_tickets_caller_number", "tickets", ["caller", "number"])


def downgrade() -> None:
    op.drop_index("ix_tickets_caller_number", table_name="tickets")
