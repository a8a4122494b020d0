"""Follow-up (回访) and callback (回拨) calls: attempts counted on the ticket.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("followup_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("followup_last_at", Time))
        batch.add_column(
            sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("callback_last_at", Time))
        batch.add_column(sa.Column("callback_done_at", Time))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for column in ("callback_done_at", "callback_last_at", "callback_attempts",
                       "followup_last_at", "followup_attempts"):
            batch.drop_column(column)
