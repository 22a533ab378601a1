"""Labelled examples: every reviewer decision kept as data to evaluate and calibrate steps.

One row per review item (unique on ``review_id``), written in the transaction that records the
decision, so a retried activity or a second delivery writes nothing twice. Texts are stored
redacted (one redaction session per example, so a value gets the same placeholder in the input
and in both outputs): an example never holds raw PII.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, Session, SQLModel, col, select

from policies.eval_stats import Calibration, calibrate
from policies.pii import Redactor
from tether.store.ledger import insert_once
from tether.store.reviews import ReviewItem

AUDIT_SAMPLE = "audit_sample"

LABELLED_DECISIONS = ("approve", "reject", "edit")
"""Decisions that say whether the model's output was right (a retry says only "try again")."""


def _now() -> datetime:
    return datetime.now(UTC)


class LabelledExample(SQLModel, table=True):
    """A step's input and output as a reviewer judged them, with the correction if any."""

    __tablename__ = "labelled_examples"
    __table_args__ = (Index("ix_labelled_examples_step", "workflow", "step", "decided_at"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: str = Field(unique=True, max_length=300)
    run_id: str = Field(max_length=200)
    workflow: str = Field(max_length=100)
    step: str = Field(max_length=100)
    tenant: str = Field(index=True, max_length=100)
    prompt_version: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    input: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    """The step's variables as the step saw them, redacted."""
    model_output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    corrected_output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The reviewer's edited output (``edit``), else None."""
    decision: str = Field(max_length=20)
    """approve, reject, edit (or retry: not a label, kept for completeness)."""
    asked_because: str = Field(max_length=40)
    """Why a human saw it: low_confidence, escalated, audit_sample, ..."""
    reason: str | None = None
    """The reviewer's reason or feedback."""
    reviewer: str | None = Field(default=None, max_length=200)
    confidence_score: float | None = None
    decided_at: datetime = Field(default_factory=_now)

    @property
    def output_was_right(self) -> bool | None:
        """The human label: approved unchanged (True), rejected or corrected (False); None for
        a decision that is no label (a retry)."""
        if self.decision == "approve":
            return True
        if self.decision in ("reject", "edit"):
            return False
        return None


def record_example(session: Session, item: ReviewItem) -> bool:
    """Store the decided ``item`` as a labelled example (once per review id). Items that judged
    no model output (an approval of a budget, a provider failure, a timeout's default) are
    skipped: they label nothing. Returns True when a row was written."""
    if (
        item.decision is None
        or item.output_model is None
        or item.output is None
        or item.decided_via == "timeout"
    ):
        return False
    redactor = Redactor()
    corrected = item.decided_output if item.decision == "edit" else None
    row = LabelledExample(
        review_id=item.review_id,
        run_id=item.run_id,
        workflow=item.workflow,
        step=item.step,
        tenant=item.tenant,
        prompt_version=item.prompt_version,
        model=item.model,
        input=_object(redactor.redact_value(item.step_input or {})),
        model_output=_object(redactor.redact_value(item.output)),
        corrected_output=_object(redactor.redact_value(corrected)) if corrected else None,
        decision=item.decision,
        asked_because=item.reason,
        reason=item.decision_reason,
        reviewer=item.reviewer,
        confidence_score=item.confidence_score,
        decided_at=item.decided_at or _now(),
    )
    return insert_once(session, row)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def examples_for(
    session: Session, workflow: str, step: str, *, limit: int | None = None
) -> list[LabelledExample]:
    """A step's labelled examples, oldest first."""
    query = (
        select(LabelledExample)
        .where(LabelledExample.workflow == workflow, LabelledExample.step == step)
        .order_by(col(LabelledExample.decided_at), col(LabelledExample.id))
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())


def calibration_report(
    session: Session,
    workflow: str,
    step: str,
    *,
    target_precision: float = 0.95,
    min_support: int = 5,
    tenants: list[str] | None = None,
    audit_sample_rate: float | None = None,
) -> Calibration:
    """The precision auto-accept would have at each confidence threshold for one step, from
    its reviews and audits, and the lowest threshold that meets ``target_precision``. With
    ``tenants``, only their examples count (a reviewer sees only their tenants' figures). With
    ``audit_sample_rate``, an audit stands for 1 / rate auto-accepted outputs (see ``calibrate``).
    """
    query = select(
        LabelledExample.confidence_score, LabelledExample.decision, LabelledExample.asked_because
    ).where(
        LabelledExample.workflow == workflow,
        LabelledExample.step == step,
        col(LabelledExample.confidence_score).is_not(None),
        col(LabelledExample.decision).in_(LABELLED_DECISIONS),
    )
    if tenants is not None:
        query = query.where(col(LabelledExample.tenant).in_(tenants))
    rows = [(s, d, why) for s, d, why in session.exec(query).all() if s is not None]
    audit_weight = 1 / audit_sample_rate if audit_sample_rate else 1.0
    return calibrate(
        [(float(score), decision == "approve") for score, decision, _ in rows],
        weights=[audit_weight if why == AUDIT_SAMPLE else 1.0 for _, _, why in rows],
        target_precision=target_precision,
        min_support=min_support,
    )
