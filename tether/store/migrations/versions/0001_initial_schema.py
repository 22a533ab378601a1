"""The store as Tether made it before migrations, and the adoption of such a store.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Until this revision the tables were made by ``SQLModel.metadata.create_all`` at start-up. The
schema below is a frozen copy of that one (it does not read today's models, so a later model
change cannot change what this revision does). On a database that already has some of it, each
table or index that is there is kept with its rows and only what is missing is created. (A
store older than ``spend_totals`` gets its running totals from ``ensure_spend_totals``, which
runs after every upgrade at start-up, as it did before migrations.)
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

schema = sa.MetaData()


def _at(name: str, *, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def _text(
    name: str,
    length: int | None = None,
    *,
    nullable: bool = False,
    index: bool = False,
    unique: bool = False,
    primary_key: bool = False,
) -> Column[str]:
    return Column(
        name,
        String(length),
        nullable=nullable,
        index=index,
        unique=unique,
        primary_key=primary_key,
    )


Table(
    "audit_events",
    schema,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    _text("key", 400, unique=True),
    _at("at", index=True),
    _text("kind", 60, index=True),
    _text("run_id", 200, nullable=True, index=True),
    _text("review_id", 300, nullable=True, index=True),
    _text("actor", 200),
    Column("detail", sa.JSON),
    _text("prev_hash", 80),
    _text("hash", 80),
)
Table(
    "budget_reservations",
    schema,
    Column("id", Integer, primary_key=True),
    _text("key", 400, unique=True),
    _text("run_id", 200, index=True),
    _text("tenant", 100, index=True),
    _text("end_user", 200, nullable=True, index=True),
    Column("estimate_usd", Float, nullable=False),
    Column("settled", Boolean, nullable=False, index=True),
    _at("created_at", index=True),
)
Table(
    "decision_intents",
    schema,
    Column("id", Integer, primary_key=True),
    _text("update_id", 300, unique=True),
    _text("review_id", 300, index=True),
    _text("run_id", 200),
    Column("decision", sa.JSON),
    _text("status", 20, index=True),
    Column("attempts", Integer, nullable=False),
    _text("last_error", 1000, nullable=True),
    Column("receipt", sa.JSON),
    _at("next_attempt_at", index=True),
    _at("created_at"),
    _at("updated_at"),
)
Table(
    "ledger_entries",
    schema,
    Column("id", Integer, primary_key=True),
    _text("key", 400, unique=True),
    _text("run_id", 200, index=True),
    _text("workflow", 100),
    _text("step", 100),
    _text("tenant", 100, index=True),
    _text("end_user", 200, nullable=True, index=True),
    _text("call", 40),
    Column("activity_attempt", Integer, nullable=False),
    _text("model", 200),
    _text("provider", 40),
    Column("simulated", Boolean, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    _text("outcome", 20),
    _text("error", 500, nullable=True),
    _at("created_at", index=True),
)
Table(
    "review_items",
    schema,
    Column("id", Integer, primary_key=True),
    _text("review_id", 300, unique=True),
    _text("run_id", 200, index=True),
    _text("workflow", 100, index=True),
    _text("step", 100),
    _text("tenant", 100, index=True),
    _text("requester", 200, nullable=True),
    _text("reason", 40, index=True),
    _text("summary", 500),
    Column("input_preview", sa.JSON),
    Column("output", sa.JSON),
    _text("raw_output", nullable=True),
    Column("output_schema", sa.JSON),
    _text("output_model", 300, nullable=True),
    _text("output_digest", 80),
    Column("confidence", sa.JSON),
    Column("confidence_score", Float, index=True),
    Column("cost_usd", Float, nullable=False),
    Column("allowed_roles", sa.JSON),
    _text("status", 20, index=True),
    Column("escalated", Boolean, nullable=False),
    Column("reminded", Boolean, nullable=False),
    _text("claimed_by", 200, nullable=True),
    _at("claimed_at", nullable=True),
    _at("opened_at", index=True),
    _at("due_at", nullable=True, index=True),
    _at("expires_at"),
    _text("decision", 20, nullable=True),
    _text("decision_reason", nullable=True),
    Column("decided_output", sa.JSON),
    _text("reviewer", 200, nullable=True),
    _at("decided_at", nullable=True),
    _text("decided_via", 20, nullable=True),
    _text("slack_channel", 100, nullable=True),
    _text("slack_ts", 40, nullable=True),
    _at("updated_at"),
    Index("ix_review_items_queue_due", "status", "due_at", "id"),
    Index("ix_review_items_queue_workflow", "status", "workflow", "due_at", "id"),
    Index("ix_review_items_queue_reason", "status", "reason", "due_at", "id"),
    Index("ix_review_items_queue_opened", "status", "opened_at", "id"),
)
Table(
    "spend_totals",
    schema,
    _text("scope", 600, primary_key=True),
    Column("spent_nanos", BigInteger, nullable=False),
    Column("reserved_nanos", BigInteger, nullable=False),
)
Table(
    "stored_texts",
    schema,
    _text("key", 80, primary_key=True),
    _text("text"),
)


def upgrade() -> None:
    bind = op.get_bind()
    found = sa.inspect(bind)
    for table in schema.sorted_tables:
        if not found.has_table(table.name):
            table.create(bind)
            continue
        indexes = {index["name"] for index in found.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    for table in reversed(schema.sorted_tables):
        op.drop_table(table.name)
