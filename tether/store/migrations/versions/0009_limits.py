"""Rate-limit counters and what each step counted against them.

Revision ID: 0009_limits
Revises: 0008_provider_health
Create Date: 2026-11-29

Adds ``limit_counters`` (requests and tokens per fixed window of a user, tenant or provider)
and ``limit_charges`` (what one step counted, under its idempotency key, so a retried activity
counts once and a step is settled once). See ``tether.store.limits``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_limits"
down_revision = "0008_provider_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_counters",
        sa.Column("key", sa.String(600), primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_limit_counters_ends_at", "limit_counters", ["ends_at"])
    op.create_table(
        "limit_charges",
        sa.Column("key", sa.String(600), primary_key=True),
        sa.Column("counters", sa.String, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("provider_calls", sa.Integer, nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limit_charges")
    op.drop_index("ix_limit_counters_ends_at", table_name="limit_counters")
    op.drop_table("limit_counters")
