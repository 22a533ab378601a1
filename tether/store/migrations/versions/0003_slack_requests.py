"""Slack replay protection in the store: one row per signed Slack request taken.

Revision ID: 0003_slack_requests
Revises: 0002_login_sessions
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_slack_requests"
down_revision = "0002_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("signature", sa.String(80), nullable=False, unique=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_slack_requests_received_at", "slack_requests", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_requests_received_at", table_name="slack_requests")
    op.drop_table("slack_requests")
