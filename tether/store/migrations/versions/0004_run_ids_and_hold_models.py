"""The run registry (run ids are never reused) and the model a budget hold was made for.

Revision ID: 0004_run_ids
Revises: 0003_slack_requests
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_run_ids"
down_revision = "0003_slack_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_ids",
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("budget_reservations") as table:
        table.add_column(sa.Column("model", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("budget_reservations") as table:
        table.drop_column("model")
    op.drop_table("run_ids")
