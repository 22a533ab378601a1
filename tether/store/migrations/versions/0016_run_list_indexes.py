"""The runs list reads the run registry newest first, whole or for one tenant, a page at a time:
indexes on ``claimed_at`` and on ``(tenant, claimed_at)``.

Revision ID: 0016_run_list_indexes
Revises: 0015_alert_resend
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0016_run_list_indexes"
down_revision = "0015_alert_resend"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_ids_claimed_at", "run_ids", ["claimed_at"])
    op.create_index("ix_run_ids_tenant_claimed_at", "run_ids", ["tenant", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_run_ids_tenant_claimed_at", table_name="run_ids")
    op.drop_index("ix_run_ids_claimed_at", table_name="run_ids")
