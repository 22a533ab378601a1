"""The step cache keeps answers the confidence gate did not accept ``held`` until a reviewer
approves them, and marks answers the judge checked on their first reuse ``verified``.

Revision ID: 0013_cache_held
Revises: 0012_step_cache
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_cache_held"
down_revision = "0012_step_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cache_entries") as batch:
        batch.add_column(sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("verified", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Code before this revision serves every live entry: held answers (no gate or reviewer
    # accepted them) are evicted first, so a downgrade never makes them servable.
    op.execute(
        sa.text(
            "UPDATE cache_entries SET evicted_at = CURRENT_TIMESTAMP WHERE held AND evicted_at IS NULL"
        )
    )
    with op.batch_alter_table("cache_entries") as batch:
        batch.drop_column("verified")
        batch.drop_column("held")
