"""Budget alerts sent, one row per scope, period and threshold.

Revision ID: 0011_budget_alerts
Revises: 0010_pii_vault
Create Date: 2026-11-29

Adds ``budget_alerts``: its primary key (scope key, which names the period, and threshold) is
what sends an alert once when two workers cross the threshold together.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_budget_alerts"
down_revision = "0010_pii_vault"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_alerts",
        sa.Column("key", sa.String(700), primary_key=True),
        sa.Column("scope_kind", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(600), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("spent_usd", sa.Float, nullable=False),
        sa.Column("limit_usd", sa.Float, nullable=False),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_budget_alerts_scope", "budget_alerts", ["scope"])


def downgrade() -> None:
    op.drop_index("ix_budget_alerts_scope", table_name="budget_alerts")
    op.drop_table("budget_alerts")
