"""The PII vault: each run's placeholders and their original values, sealed with AES-GCM.

Revision ID: 0010_pii_vault
Revises: 0009_limits
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_pii_vault"
down_revision = "0009_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pii_vault",
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("placeholder", sa.String(80), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("sealed", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pii_vault")
