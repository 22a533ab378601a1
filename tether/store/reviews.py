"""Review items: the store's projection of every paused decision, read by the queue and Slack.

A review item's columns are declared once, in layers (a public shape, then the table):

- ``ReviewSummary``: what the API lists and the queue shows of an item (no output, no schema);
- ``QueueRow``: the summary plus what the queue page needs to offer a claim;
- ``ReviewItem``: the table, every column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, Session, SQLModel, func, select
from sqlmodel.main import SQLModelConfig


def _now() -> datetime:
    return datetime.now(UTC)


class ReviewSummary(SQLModel):
    """One review item as the API lists it (``GET /api/reviews``) and the queue shows it."""

    # The API always sends every field, so its schema marks them all required.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    review_id: str = Field(unique=True, max_length=300)
    run_id: str = Field(index=True, max_length=200)
    workflow: str = Field(index=True, max_length=100)
    step: str = Field(max_length=100)
    reason: str = Field(index=True, max_length=40)
    summary: str = Field(max_length=500)
    status: str = Field(default="pending", index=True, max_length=20)
    """pending, approved, rejected, edited, retried; or, ended by a timeout: expired (no
    decision before the review expired), failed (the policy's default fails the run) or
    defaulted (the policy's default action was taken)."""
    confidence_score: float | None = Field(default=None, index=True)
    cost_usd: float = 0.0
    claimed_by: str | None = Field(default=None, max_length=200)
    opened_at: datetime = Field(default_factory=_now, index=True)
    due_at: datetime | None = Field(default=None, index=True)
    decision: str | None = Field(default=None, max_length=20)
    reviewer: str | None = Field(default=None, max_length=200)
    decision_reason: str | None = None
    """Why: the reviewer's reason, or what the timeout did (expired, failed, defaulted)."""


class QueueRow(ReviewSummary):
    """One line of the queue: only the light columns, never the output or schema."""

    escalated: bool = False
    allowed_roles: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class ReviewPublic(QueueRow):
    """Everything about an item a reviewer may read (``GET /api/reviews/{id}``): the queue's
    columns plus the input, the output with its schema and digest, and the decision."""

    tenant: str = Field(index=True, max_length=100)
    requester: str | None = Field(default=None, max_length=200)
    input_preview: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    raw_output: str | None = None
    output_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    output_digest: str = Field(max_length=80)
    confidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    expires_at: datetime
    decided_output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    decided_at: datetime | None = None
    decided_via: str | None = Field(default=None, max_length=20)


class ReviewItem(ReviewPublic, table=True):
    """The stored item: the public shape plus what only Tether itself uses."""

    __tablename__ = "review_items"
    # The queue filters by status (and workflow or reason) and sorts by due time or age; these
    # let it count and page through 10,000s of items without scanning the table.
    __table_args__ = (
        Index("ix_review_items_queue_due", "status", "due_at", "id"),
        Index("ix_review_items_queue_workflow", "status", "workflow", "due_at", "id"),
        Index("ix_review_items_queue_reason", "status", "reason", "due_at", "id"),
        Index("ix_review_items_queue_opened", "status", "opened_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    output_model: str | None = Field(default=None, max_length=300)
    reminded: bool = False
    claimed_at: datetime | None = None
    slack_channel: str | None = Field(default=None, max_length=100)
    slack_ts: str | None = Field(default=None, max_length=40)
    updated_at: datetime = Field(default_factory=_now)
    # What a labelled example keeps of the step (tether.store.examples): set for model outputs.
    prompt_version: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    step_input: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


def get_review(session: Session, review_id: str) -> ReviewItem | None:
    return session.exec(select(ReviewItem).where(ReviewItem.review_id == review_id)).first()


def count_pending_reviews(session: Session) -> int:
    """How many review items wait for a decision (``tether dev`` says so when it starts)."""
    query = select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "pending")
    return int(session.exec(query).one())


class DecisionIntent(SQLModel, table=True):
    """A reviewer's decision written down before it is sent to the workflow (an outbox row).

    The decision survives a dead worker or a restarted UI: a redelivery loop resends pending
    intents under the same update id, and Temporal keeps one update per id.
    """

    __tablename__ = "decision_intents"

    id: int | None = Field(default=None, primary_key=True)
    update_id: str = Field(unique=True, max_length=300)
    review_id: str = Field(index=True, max_length=300)
    run_id: str = Field(max_length=200)
    decision: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = Field(default="pending", index=True, max_length=20)
    """pending, delivered, refused."""
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    receipt: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    next_attempt_at: datetime = Field(default_factory=_now, index=True)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
