"""What the retention job needs to find dead rows by index: when a rate-limit charge's last
window ends, and an index on when a cache entry expires.

Revision ID: 0014_retention
Revises: 0013_cache_held
Create Date: 2026-11-29

``limit_charges.ends_at`` is NULL on rows charged before this revision; the prune works their
end out from the counter keys they name (``tether.store.retention``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_retention"
down_revision = "0013_cache_held"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("limit_charges") as batch:
        batch.add_column(sa.Column("ends_at", sa.BigInteger, nullable=True))
    op.create_index("ix_limit_charges_ends_at", "limit_charges", ["ends_at"])
    op.create_index("ix_cache_entries_expires", "cache_entries", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_cache_entries_expires", table_name="cache_entries")
    op.drop_index("ix_limit_charges_ends_at", table_name="limit_charges")
    with op.batch_alter_table("limit_charges") as batch:
        batch.drop_column("ends_at")
