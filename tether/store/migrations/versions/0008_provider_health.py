"""Provider health published by every worker: one row per worker and provider/model.

Revision ID: 0008_provider_health
Revises: 0007_step_events
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_provider_health"
down_revision = "0007_step_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_health",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trips", sa.Integer, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("error_rate", sa.Float, nullable=False),
        sa.Column("latency_p50_ms", sa.Float, nullable=True),
        sa.Column("latency_p95_ms", sa.Float, nullable=True),
        sa.Column("window_s", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("worker", "model", name="uq_provider_health_worker_model"),
    )
    op.create_index("ix_provider_health_updated_at", "provider_health", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_provider_health_updated_at", table_name="provider_health")
    op.drop_table("provider_health")
