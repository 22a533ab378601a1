"""Server-side review UI sessions and failed-login counts (throttling shared by replicas).

Revision ID: 0002_login_sessions
Revises: 0001
Create Date: 2026-11-28

The session cookie used to carry the reviewer's name and an HMAC of their password; it now
carries a random id whose hash is a row of ``web_sessions`` (logout deletes it). Sessions signed
by older versions are no longer read: reviewers sign in again once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_login_sessions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("reviewer", sa.String(200), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "failed_logins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Index("ix_failed_logins_subject", "kind", "subject", "at"),
    )


def downgrade() -> None:
    op.drop_table("failed_logins")
    op.drop_table("web_sessions")
