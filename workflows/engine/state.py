"""What a run holds between workflow tasks: who it is for, the review it waits on, one step's
call scope; plus the patch ids and the short-activity timeout every part of the engine shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel
    from temporalio.common import RetryPolicy

    from activities.failures import NON_RETRYABLE_TYPES
    from policies.models import ModelTier
    from tether.contracts import DecisionReceipt, ReviewDecision, ReviewReason, ReviewTicket
    from workflows.steps import LlmStep

SHORT_ACTIVITY = timedelta(seconds=30)
SHORT_ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=20,
    non_retryable_error_types=NON_RETRYABLE_TYPES,
)
"""Review and document activities (store writes): about 15 minutes of retries, then the run
fails with the activity's error instead of retrying for ever. Only the commands' attributes
change, not which commands a run issues, so old histories replay without a patch."""
# Patch ids (workflow.patched) of changes that alter the commands a run issues, oldest first.
CHECKPOINT_AS_LOCAL_ACTIVITY = "checkpoint-as-local-activity"
STEP_RUNS_ITS_CHECKPOINT = "step-runs-its-checkpoint"
ESCALATE_AT_ONCE = "escalate-at-once"
RATE_LIMITED_STEPS = "rate-limited-steps"
INJECTION_QUARANTINE = "injection-quarantine"


@dataclass
class PendingReview:
    """The review a run waits on, and the decision once one is taken."""

    ticket: ReviewTicket
    step: str
    reason: ReviewReason
    digest: str
    requester: str | None
    output_model: type[BaseModel] | None
    approval_only: bool
    allowed_roles: list[str]
    decision: ReviewDecision | None = None
    receipt: DecisionReceipt | None = None


@dataclass(frozen=True)
class StepCall:
    """One attempt scope of a step: what every checkpoint and model call in it is asked."""

    step: LlmStep[Any]
    tier: ModelTier | str
    input_chars: int
    variables: dict[str, str]
    text_refs: dict[str, str]
    feedback: str | None
    key: str


@dataclass
class RunContext:
    """Who the run is for (set by ``begin``)."""

    tenant: str = "default"
    end_user: str | None = None
    requester: str | None = None
    input_preview: dict[str, Any] = field(default_factory=dict)
