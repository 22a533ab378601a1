"""The step events activities record: a step starting, waiting on a rate limit and settling, a
review opening, a decision.

Each is built here from what the activity already has and written by the activity in the store
transaction it already opens (``tether.store.step_events``). Keys derive from the workflow's
idempotency keys and review ids, so a retried activity records a transition once.
"""

from __future__ import annotations

from tether.contracts import (
    CheckpointInput,
    LlmStepInput,
    LlmStepResult,
    OpenReviewInput,
    RateLimited,
    RecordDecisionInput,
)
from tether.store.reviews import ReviewItem
from tether.store.step_events import StepEventRow

__all__ = [
    "review_decided",
    "review_opened",
    "review_timed_out",
    "step_settled",
    "step_started",
    "step_waiting",
]


def step_started(checkpoint: CheckpointInput, step: LlmStepInput, model: str) -> StepEventRow:
    """The step's first activity attempt reserved its cost: it is running on ``model``."""
    return StepEventRow(
        key=f"started:{step.idempotency_key}",
        run_id=step.run_id,
        seq=0,
        workflow=step.workflow,
        tenant=checkpoint.tenant,
        step=step.step,
        state="running",
        model=model,
    )


def step_waiting(step: LlmStepInput, tenant: str, limited: RateLimited) -> StepEventRow:
    """A rate limit or provider cap is full: the run waits on a timer until its window resets
    (one event per window waited for)."""
    return StepEventRow(
        key=f"waiting:{step.idempotency_key}:{limited.resets_at.timestamp():.3f}",
        run_id=step.run_id,
        seq=0,
        workflow=step.workflow,
        tenant=tenant,
        step=step.step,
        state="waiting",
        detail=f"{limited.limit}; waits {limited.retry_after_s:g} s"[:500],
    )


def step_settled(inp: LlmStepInput, result: LlmStepResult) -> StepEventRow:
    """The step answered (validly or not), scored, with its guards' decisions."""
    return StepEventRow(
        key=f"settled:{inp.idempotency_key}",
        run_id=inp.run_id,
        seq=0,
        workflow=inp.workflow,
        tenant=inp.tenant,
        step=inp.step,
        state="done" if result.status == "valid" else "invalid_output",
        model=result.model,
        cost_usd=result.cost_usd,
        latency_ms=round(result.latency_ms, 3),
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        confidence_score=result.confidence.score,
        confidence_outcome=result.confidence.outcome,
        guards=[guard.model_dump(mode="json") for guard in result.guards],
    )


def review_opened(inp: OpenReviewInput, roles: list[str]) -> StepEventRow:
    """The step waits for a human: why, and who may decide."""
    return StepEventRow(
        key=f"review_opened:{inp.review_id}",
        run_id=inp.run_id,
        seq=0,
        workflow=inp.workflow,
        tenant=inp.tenant,
        step=inp.step,
        state="awaiting_review",
        cost_usd=inp.cost_usd,
        confidence_score=inp.confidence.score if inp.confidence else None,
        confidence_outcome=inp.confidence.outcome if inp.confidence else None,
        detail=f"{inp.reason}; for {', '.join(roles)}"[:500],
        at=inp.opened_at,
    )


def review_decided(
    inp: RecordDecisionInput, *, workflow: str, tenant: str, step: str, state: str
) -> StepEventRow:
    """A reviewer (or a timeout's default action) decided the step's review."""
    decision = inp.decision
    return StepEventRow(
        key=f"review_decided:{inp.review_id}",
        run_id=inp.run_id,
        seq=0,
        workflow=workflow,
        tenant=tenant,
        step=step,
        state=state,
        actor=decision.reviewer,
        detail=f"via {decision.channel}",
        at=inp.decided_at,
    )


def review_timed_out(item: ReviewItem, ends: str) -> StepEventRow:
    """No decision came: the review ``expired``, or the policy's default failed the run."""
    return StepEventRow(
        key=f"review_ended:{item.review_id}",
        run_id=item.run_id,
        seq=0,
        workflow=item.workflow,
        tenant=item.tenant,
        step=item.step,
        state=ends,
        detail="no decision before the review's timeout",
    )
