"""The audit log's head row, for the keyed chain.

Revision ID: 0005_audit_head
Revises: 0004_run_ids
Create Date: 2026-11-29

Adds ``audit_head``: one row with the chain's last seq and hash, updated in the transaction
that appends. A store that already has audit rows (the plain SHA-256 chain of before the key)
gets a head marked ``keyed = false`` at its last row; the first append with the key re-chains
those rows under it and records an ``audit_rechained`` event saying whether their old chain
held (see ``tether.store.audit_rechain``). An empty log starts keyed. ``mac`` (an HMAC of
seq and hash under the audit key) is written by the first keyed append; the migration has no key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_head"
down_revision = "0004_run_ids"
branch_labels = None
depends_on = None

GENESIS = "sha256:" + "0" * 64


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("keyed", sa.Boolean, nullable=False),
        sa.Column("mac", sa.String(80), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    bind = op.get_bind()
    last = bind.execute(
        sa.text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
    ).first()
    seq, last_hash = (last[0], last[1]) if last is not None else (0, GENESIS)
    op.bulk_insert(
        head,
        [
            {
                "id": 1,
                "seq": seq,
                "hash": last_hash,
                "keyed": last is None,
                "mac": "",
                "updated_at": datetime.now(UTC),
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("audit_head")
