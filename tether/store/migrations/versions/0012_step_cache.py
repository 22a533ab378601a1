"""The step cache: past answers by exact input and by embedding, with reviewers' verdicts.

Revision ID: 0012_step_cache
Revises: 0011_budget_alerts
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_step_cache"
down_revision = "0011_budget_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("partition", sa.String(80), nullable=False),
        sa.Column("route_scope", sa.String(80), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("prompt_version", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_digest", sa.String(80), nullable=False),
        sa.Column("embedder", sa.String(200), nullable=True),
        sa.Column("embedding", sa.LargeBinary, nullable=True),
        sa.Column("output", sa.JSON, nullable=False),
        sa.Column("raw_output", sa.String, nullable=False),
        sa.Column("output_digest", sa.String(80), nullable=False),
        sa.Column("confidence", sa.JSON, nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("source_run_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("verdict", sa.String(20), nullable=True),
        sa.Column("evicted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_cache_entries_exact", "cache_entries", ["partition", "input_digest"])
    op.create_index("ix_cache_entries_partition_id", "cache_entries", ["partition", "id"])
    op.create_index("ix_cache_entries_verdicts", "cache_entries", ["route_scope", "verdict"])
    op.create_index("ix_cache_entries_answer", "cache_entries", ["route_scope", "output_digest"])


def downgrade() -> None:
    op.drop_table("cache_entries")
