"""Inputs and results of activities, workflow updates and queries: one pydantic model each way.

Workflows import these, so this module must stay free of I/O and of non-deterministic imports.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from policies.limits import LimitOutcome
from policies.models import GateOutcome, ModelTier, TimeoutDefault
from policies.values import BudgetCheck, ConfidenceReport, Usage

JsonObject = dict[str, Any]


# --- LLM step ---------------------------------------------------------------------------------

GuardName = Literal["route", "breaker", "cache", "pii", "injection", "rate_limit", "provider_cap"]


class GuardEvent(BaseModel):
    """What one production guard decided for a step: why a model was chosen, a cache hit, a
    redaction, an injection verdict, a rate-limit wait. Recorded on the step's result and status
    (so ``tether status``, the API and the UI show it) and in the audit log. Never holds PII."""

    guard: GuardName
    outcome: str
    """A short machine word: ``strong``, ``exact_hit``, ``semantic_hit``, ``redacted``, ..."""
    detail: str = ""
    """One line for people: the rule that fired, the similarity, the kinds redacted."""
    value: float | None = None
    """A figure when there is one: a similarity, a score, seconds waited."""


class InjectionQuarantine(BaseModel):
    """Why a step's input was held back from the model: the injection verdict a reviewer reads.

    No input text beyond ``evidence`` (the short pieces the rules matched)."""

    score: float
    threshold: float
    variables: list[str]
    """The untrusted inputs that scored hostile."""
    rules: list[str]
    """``category/rule`` of each signal that fired."""
    evidence: list[str] = Field(default_factory=list)
    input_digests: list[str] = Field(default_factory=list)
    """Digests of the hostile texts: a reviewer's approval clears exactly these."""


class PromptTemplate(BaseModel):
    """A versioned prompt. ``user`` is a ``str.format`` template filled from step variables."""

    id: str
    version: str
    system: str
    user: str


class LlmStepInput(BaseModel):
    run_id: str
    workflow: str
    step: str
    tenant: str = "default"
    end_user: str | None = None
    prompt: PromptTemplate
    variables: dict[str, str] = Field(default_factory=dict)
    text_refs: dict[str, str] = Field(default_factory=dict)
    """Variables whose (large) text is in the store: name -> stored text key."""
    output_model: str
    """Import path ``module:Class`` of the pydantic model the output must validate against."""
    tier: ModelTier | Literal["auto"] = "cheap"
    model: str | None = None
    """Explicit ``provider/model``; overrides routing (used by downgrade and reviewer retry)."""
    fallback_index: int = 0
    feedback: str | None = None
    """A reviewer's feedback, appended to the prompt on a retry."""
    idempotency_key: str
    """Made by the workflow: run id + step + attempt scope; the activity adds its attempt."""
    max_output_tokens: int = Field(default=512, gt=0)
    reservation_key: str | None = None
    """The checkpoint's reservation this step settles when it ends."""
    trusted_variables: list[str] = Field(default_factory=list)
    """Variables the workflow vouches for; every other variable and text is untrusted."""
    cleared_inputs: list[str] = Field(default_factory=list)
    """Digests of untrusted texts a reviewer let through after an injection quarantine."""
    feature: str | None = None
    """The feature tag the workflow gave the step (``LlmStep.feature``), for cost metrics."""
    side_effecting: bool = False
    """The step acts on the world (sends, books, writes): its answers are never cached."""


class AttemptRecord(BaseModel):
    """One provider call, as written to the cost ledger."""

    key: str
    call: str
    """``main``, ``repair-1``, ``sample-2``, ``judge``, ``embed-1`` (an input's embedding) ..."""
    activity_attempt: int
    model: str
    provider: str
    simulated: bool
    usage: Usage
    cost_usd: float
    latency_ms: float
    outcome: Literal["ok", "invalid_output", "error"]
    error: str | None = None

    @property
    def embedding(self) -> bool:
        """An embedding call: in the step's cost, not in its tokens or its model calls."""
        return self.call.startswith(EMBEDDING_CALL)


EMBEDDING_CALL = "embed-"
"""The call name prefix of embedding calls (``embed-1``, ``embed-2``)."""


class LlmStepResult(BaseModel):
    step: str
    status: Literal["valid", "invalid_output", "quarantined"]
    output: JsonObject | None
    """The validated output (``status == "valid"``)."""
    raw_output: str
    validation_error: str | None = None
    output_digest: str
    model: str
    provider: str
    simulated: bool
    route_length: int
    """How many models the route has; the workflow falls back while fallback_index < this."""
    usage: Usage
    cost_usd: float
    """Cost of this execution's calls (main + repairs + samples + judge)."""
    run_cost_usd: float
    """The run's total cost in the ledger after this step, every attempt counted."""
    latency_ms: float
    repairs: int
    attempts: list[AttemptRecord]
    confidence: ConfidenceReport
    guards: list[GuardEvent] = Field(default_factory=list)
    quarantine: InjectionQuarantine | None = None
    """Set with ``status == "quarantined"``: no model was called."""


# --- Cost checkpoint --------------------------------------------------------------------------


class CheckpointInput(BaseModel):
    run_id: str
    workflow: str
    step: str
    tenant: str = "default"
    end_user: str | None = None
    tier: ModelTier | Literal["auto"] = "cheap"
    model: str | None = None
    input_chars: int = Field(ge=0)
    max_output_tokens: int = Field(default=512, gt=0)
    extra_run_budget_usd: float = Field(default=0.0, ge=0)
    """Spend a reviewer approved beyond the run budget."""
    reservation_key: str
    force: bool = False
    """Reserve even over budget: a reviewer approved the extra spend."""
    limits_waived: bool = False
    """Go on over the user's and tenant's rate limits: a reviewer approved (still counted)."""


class CheckpointResult(BaseModel):
    check: BudgetCheck
    model: str
    """The model the estimate was made for."""
    route: list[str]
    """The fallback chain for this step, starting with ``model``."""
    reservation_key: str | None = None


class RateLimited(BaseModel):
    """A step held back by a rate limit or its provider's cap: no model was called."""

    guard: Literal["rate_limit", "provider_cap"]
    action: LimitOutcome
    """``wait`` for ``retry_after_s``, ``refuse`` (end the run) or ``review`` (ask a human)."""
    limit: str
    """Which limit is full, for people: ``user u1: 60 requests per minute``."""
    retry_after_s: float
    resets_at: datetime


class CheckedStepInput(BaseModel):
    """One model of an LLM step's route, asked in the activity that checkpoints its cost first.

    ``step.fallback_index`` picks the model from the route the checkpoint makes; the step's own
    ``model`` and ``reservation_key`` are filled in from the checkpoint.
    """

    checkpoint: CheckpointInput
    step: LlmStepInput


class CheckedStepResult(BaseModel):
    route: list[str]
    """The step's fallback chain."""
    checkpoint: CheckpointResult | None = None
    """None when ``fallback_index`` is past the end of the route: every model was tried."""
    step: LlmStepResult | None = None
    """None when the checkpoint refused the spend (no model was called), or past the route."""
    limited: RateLimited | None = None
    """Set when a rate limit or provider cap held the step back before its checkpoint."""


# --- Documents -------------------------------------------------------------------------------


class PrepareDocumentInput(BaseModel):
    run_id: str
    workflow: str
    document: str
    chunk_chars: int = Field(default=6000, gt=200)


class PreparedDocument(BaseModel):
    guard_action: Literal["none", "truncate", "summarize", "escalate"]
    original_chars: int
    kept_chars: int
    max_input_chars: int
    chunk_keys: list[str]
    chunk_chars: list[int]


# --- Review gate ------------------------------------------------------------------------------

ReviewReason = Literal[
    "low_confidence",
    "escalated",
    "blocked",
    "invalid_output",
    "over_budget",
    "provider_failure",
    "audit_sample",
    "rate_limited",
    "prompt_injection",
]
DecisionKind = Literal["approve", "reject", "edit", "retry"]
RetryMode = Literal["strong_model", "with_feedback"]
Channel = Literal["web", "slack", "api", "cli", "timeout"]


class OpenReviewInput(BaseModel):
    review_id: str
    run_id: str
    workflow: str
    step: str
    tenant: str = "default"
    requester: str | None = None
    reason: ReviewReason
    summary: str
    """One line for the queue and Slack: what needs deciding."""
    input_preview: JsonObject = Field(default_factory=dict)
    output: JsonObject | None = None
    raw_output: str | None = None
    output_schema: JsonObject | None = None
    output_model: str | None = None
    output_digest: str
    confidence: ConfidenceReport | None = None
    cost_usd: float = 0.0
    opened_at: datetime
    escalate: bool = False
    """The confidence gate escalated the step: the review goes to the policy's escalation role
    (and channel) at once, not to an ordinary reviewer first."""
    prompt_version: str | None = None
    model: str | None = None
    step_input: dict[str, str] | None = None
    """The step's variables (store text refs as ``ref:NAME``), kept for its labelled example."""


class ReviewTicket(BaseModel):
    """What the workflow needs to enforce and time the review (from the policy)."""

    review_id: str
    allowed_roles: list[str]
    expires_at: datetime
    remind_after: timedelta | None = None
    escalate_after: timedelta | None = None
    default_after: timedelta | None = None
    default_action: TimeoutDefault = "fail"


class ReviewDecision(BaseModel):
    """The argument of the workflow's ``decide`` update."""

    review_id: str
    kind: DecisionKind
    reviewer: str
    reviewer_roles: list[str]
    output_digest: str
    """Digest of the exact output the reviewer saw; a stale form is refused."""
    reason: str | None = None
    edited_output: JsonObject | None = None
    retry_mode: RetryMode | None = None
    feedback: str | None = None
    channel: Channel = "api"


class DecisionReceipt(BaseModel):
    review_id: str
    kind: DecisionKind
    reviewer: str
    decided_at: datetime
    output_digest: str
    """Digest of the output that now stands (the edited one for an edit)."""


class RecordDecisionInput(BaseModel):
    """Activity input: project a taken decision into the store and Slack."""

    review_id: str
    run_id: str
    decision: ReviewDecision
    decided_at: datetime
    final_output: JsonObject | None = None
    receipt: DecisionReceipt | None = None
    """The receipt the ``decide`` update returned (None from runs before it was sent)."""


class ReviewNudgeInput(BaseModel):
    """Activity input: a review timeout fired (remind, escalate, or the default action)."""

    review_id: str
    run_id: str
    kind: Literal["remind", "escalate", "default"]
    detail: str = ""
    ends_run: Literal["expired", "failed"] | None = None
    """Set when the timeout ends the run: the review expired, or the policy's default is to fail."""


# --- Run status (the ``status`` query) ---------------------------------------------------------

RunState = Literal["running", "awaiting_review", "completed", "failed", "stopped"]
StepState = Literal["running", "done", "awaiting_review", "rejected", "failed", "stopped"]


class StepStatus(BaseModel):
    name: str
    state: StepState
    model: str | None = None
    simulated: bool = False
    confidence: ConfidenceReport | None = None
    outcome: GateOutcome | None = None
    cost_usd: float = 0.0
    decision: DecisionKind | None = None
    guards: list[GuardEvent] = Field(default_factory=list)


class PendingDecision(BaseModel):
    review_id: str
    step: str
    reason: ReviewReason
    output_digest: str
    allowed_roles: list[str]
    expires_at: datetime


class RunStatus(BaseModel):
    run_id: str
    workflow: str
    state: RunState
    steps: list[StepStatus] = Field(default_factory=list)
    cost_usd: float = 0.0
    pending: PendingDecision | None = None
