"""Step events (one row per step transition of a run) and how a registered run ended.

Revision ID: 0007_step_events
Revises: 0006_eval_examples
Create Date: 2026-11-29

``step_events`` feeds the runs pages, the dashboard and the live stream of a run's steps.
``run_ids`` gains ``ended_state`` and ``ended_at``: filled once Temporal reports the run
closed, so the runs list asks Temporal only about runs not known to have ended.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_step_events"
down_revision = "0006_eval_examples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("confidence_score", sa.Float, nullable=True),
        sa.Column("confidence_outcome", sa.String(20), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("guards", sa.JSON, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_step_events_run_seq"),
    )
    op.create_index("ix_step_events_run_id", "step_events", ["run_id"])
    op.create_index("ix_step_events_workflow", "step_events", ["workflow"])
    op.create_index("ix_step_events_tenant", "step_events", ["tenant"])
    op.create_index("ix_step_events_at", "step_events", ["at"])
    with op.batch_alter_table("run_ids") as table:
        table.add_column(sa.Column("ended_state", sa.String(20), nullable=True))
        table.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_ids") as table:
        table.drop_column("ended_at")
        table.drop_column("ended_state")
    op.drop_table("step_events")
