"""Labelled examples (every reviewer decision, for evaluation and calibration) and what a
review item keeps of its step for them: prompt version, model and the step's input.

Revision ID: 0006_eval_examples
Revises: 0005_audit_head
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_eval_examples"
down_revision = "0005_audit_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labelled_examples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_id", sa.String(300), nullable=False, unique=True),
        sa.Column("run_id", sa.String(200), nullable=False),
        sa.Column("workflow", sa.String(100), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("prompt_version", sa.String(100), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("input", sa.JSON),
        sa.Column("model_output", sa.JSON),
        sa.Column("corrected_output", sa.JSON),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("asked_because", sa.String(40), nullable=False),
        sa.Column("reason", sa.String, nullable=True),
        sa.Column("reviewer", sa.String(200), nullable=True),
        sa.Column("confidence_score", sa.Float, nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_labelled_examples_step", "workflow", "step", "decided_at"),
    )
    with op.batch_alter_table("review_items") as table:
        table.add_column(sa.Column("prompt_version", sa.String(100), nullable=True))
        table.add_column(sa.Column("model", sa.String(200), nullable=True))
        table.add_column(sa.Column("step_input", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as table:
        table.drop_column("step_input")
        table.drop_column("model")
        table.drop_column("prompt_version")
    op.drop_table("labelled_examples")
