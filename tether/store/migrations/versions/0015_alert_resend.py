"""Budget alerts Slack did not take are resent: each alert keeps its tenant and workflow (to
word the message again), when it may next be sent, the token of the worker holding it and how
many posts failed. Alerts recorded before this revision are never resent (``send_after`` NULL).

Revision ID: 0015_alert_resend
Revises: 0014_retention
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_alert_resend"
down_revision = "0014_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budget_alerts") as batch:
        batch.add_column(sa.Column("tenant", sa.String(200), nullable=True))
        batch.add_column(sa.Column("workflow", sa.String(200), nullable=True))
        batch.add_column(sa.Column("send_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("send_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("send_attempts", sa.Integer, nullable=False, server_default="0"))
        batch.create_index("ix_budget_alerts_send_after", ["send_after"])


def downgrade() -> None:
    with op.batch_alter_table("budget_alerts") as batch:
        batch.drop_index("ix_budget_alerts_send_after")
        batch.drop_column("send_attempts")
        batch.drop_column("send_token")
        batch.drop_column("send_after")
        batch.drop_column("workflow")
        batch.drop_column("tenant")
