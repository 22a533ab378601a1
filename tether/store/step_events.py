"""Step events: one row per step transition of a run, for the runs pages and the live stream.

Activities write them in the transaction they already open (a step settling, a review opening,
a decision recorded), never workflow code. Each row has a ``key`` made from the workflow's
idempotency key, so an activity that runs twice records its transition once, and a ``seq``
that counts a run's events from 1 in the order their transactions commit: a reader that has
seen ``seq`` n (an SSE client's ``Last-Event-ID``) misses nothing by asking for the ones after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, UniqueConstraint, func, select
from sqlmodel import Field, Session, SQLModel, col

from tether.store.ledger import insert_once

__all__ = [
    "StepEvent",
    "StepEventRow",
    "events_after",
    "last_seq",
    "record_step_event",
]

_SEQ_TRIES = 50


def utcnow() -> datetime:
    return datetime.now(UTC)


class StepEventRow(SQLModel, table=True):
    """One transition of one step of a run."""

    __tablename__ = "step_events"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_step_events_run_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=400)
    run_id: str = Field(index=True, max_length=200)
    seq: int
    workflow: str = Field(index=True, max_length=100)
    tenant: str = Field(index=True, max_length=100)
    step: str = Field(max_length=100)
    state: str = Field(max_length=30)
    """``running``, ``waiting`` (on a rate limit), ``done``, ``invalid_output``,
    ``awaiting_review``, or a decision:
    ``approved``, ``rejected``, ``edited``, ``retried``, ``defaulted``."""
    model: str | None = Field(default=None, max_length=200)
    cost_usd: float = 0.0
    latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    confidence_score: float | None = None
    confidence_outcome: str | None = Field(default=None, max_length=20)
    actor: str | None = Field(default=None, max_length=200)
    """Who decided (a reviewer's name) for a decision; None otherwise."""
    detail: str | None = Field(default=None, max_length=500)
    """One line: why a review opened, a decision's channel. Never output or prompt text."""
    guards: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    """The step's ``GuardEvent``s, as JSON."""
    at: datetime = Field(default_factory=utcnow, index=True)


class StepEvent(BaseModel):
    """A step event as the API, the stream and the CLI show it."""

    seq: int
    run_id: str
    workflow: str
    tenant: str
    step: str
    state: str
    model: str | None = None
    cost_usd: float = 0.0
    latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    confidence_score: float | None = None
    confidence_outcome: str | None = None
    actor: str | None = None
    detail: str | None = None
    guards: list[dict[str, Any]] = []
    at: datetime

    @classmethod
    def of(cls, row: StepEventRow) -> StepEvent:
        at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)
        return cls.model_validate(row.model_dump() | {"at": at})


def record_step_event(session: Session, event: StepEventRow) -> bool:
    """Append ``event`` to its run's events, once per ``key``; True when this call added it.

    The next ``seq`` is read and inserted in this transaction. Two transactions that read the
    same ``seq`` meet at the unique (run, seq) index: on PostgreSQL the second waits for the
    first to commit, finds its seq taken and takes the next, so seqs follow commit order.
    """
    for _ in range(_SEQ_TRIES):
        event.seq = last_seq(session, event.run_id) + 1
        if insert_once(session, event):
            return True
        if _has_key(session, event.key):  # recorded before (a retried activity)
            return False
    raise RuntimeError(f"no free event seq for run {event.run_id!r}")  # pragma: no cover


def _has_key(session: Session, key: str) -> bool:
    found = session.execute(select(col(StepEventRow.id)).where(col(StepEventRow.key) == key))
    return found.first() is not None


def last_seq(session: Session, run_id: str) -> int:
    """The seq of the run's newest event (0 when it has none)."""
    query = select(func.max(col(StepEventRow.seq))).where(col(StepEventRow.run_id) == run_id)
    return int(session.execute(query).scalar_one() or 0)


def events_after(
    session: Session, run_id: str, after_seq: int = 0, limit: int = 500
) -> list[StepEvent]:
    """The run's events with a seq above ``after_seq``, oldest first."""
    query = (
        select(StepEventRow)
        .where(col(StepEventRow.run_id) == run_id, col(StepEventRow.seq) > after_seq)
        .order_by(col(StepEventRow.seq))
        .limit(limit)
    )
    return [StepEvent.of(row) for row in session.execute(query).scalars()]
