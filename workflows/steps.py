"""The developer-facing vocabulary of a Tether workflow: step specs, results and halts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from activities.failures import NON_RETRYABLE_TYPES
from policies.models import ModelTier
from policies.values import ConfidenceReport
from tether.contracts import PromptTemplate, ReviewDecision, StepStatus

OutputT = TypeVar("OutputT", bound=BaseModel)

HaltStatus = Literal[
    "rejected", "blocked", "stopped_over_budget", "provider_failure", "expired", "rate_limited"
]
StepDisposition = Literal["accepted", "approved", "edited"]


@dataclass(frozen=True)
class StepOptions:
    """Timeouts and the retry policy of one step's activity (Temporal owns every retry)."""

    start_to_close: timedelta = timedelta(minutes=2)
    heartbeat: timedelta = timedelta(seconds=10)
    initial_retry: timedelta = timedelta(seconds=1)
    max_retry_interval: timedelta = timedelta(seconds=30)
    max_attempts: int = 4

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=self.initial_retry,
            backoff_coefficient=2.0,
            maximum_interval=self.max_retry_interval,
            maximum_attempts=self.max_attempts,
            non_retryable_error_types=NON_RETRYABLE_TYPES,
        )


@dataclass(frozen=True)
class LlmStep(Generic[OutputT]):
    """One model call in a workflow: its prompt, output schema and how it is routed and gated.

    Attributes:
        name: Step name, unique in the workflow; keys the ledger, policy and review.
        prompt: The versioned prompt template.
        output: The pydantic model the answer must validate against.
        tier: ``cheap``, ``strong`` or ``auto`` (chosen by the policy's route_rules).
        gate: When False the confidence gate only records; no human review is asked.
        trusted_variables: Variables the workflow vouches for (its own constants, say); every
            other variable and stored text is untrusted: scored for prompt injection and fenced.
        feature: A product feature this step serves (``"reply-draft"``): its cost is reported
            per feature in ``tether_cost_usd_total``. Keep the set of names small.
        side_effecting: The step acts on the world (sends, books, writes): never cached.
    """

    name: str
    prompt: PromptTemplate
    output: type[OutputT]
    tier: ModelTier | Literal["auto"] = "cheap"
    max_output_tokens: int = 512
    gate: bool = True
    trusted_variables: tuple[str, ...] = ()
    feature: str | None = None
    side_effecting: bool = False
    options: StepOptions = field(default_factory=StepOptions)

    @property
    def output_path(self) -> str:
        return f"{self.output.__module__}:{self.output.__qualname__}"


@dataclass(frozen=True)
class StepResult(Generic[OutputT]):
    """What a step produced, and how it came to stand: automatically or by a human."""

    step: str
    output: OutputT
    disposition: StepDisposition
    confidence: ConfidenceReport
    model: str
    cost_usd: float
    decision: ReviewDecision | None = None


class RunHalted(ApplicationError):
    """The run stops cleanly: a reviewer rejected, a gate blocked, a budget stopped it.

    Uncaught, it fails the run with this message; workflows usually catch it and return a result
    whose ``status`` says why (see ``TetherResult.halted``).
    """

    def __init__(self, status: HaltStatus, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}", type="RunHalted", non_retryable=True)
        self.status: HaltStatus = status
        self.step = step
        self.reason = reason


RunResultStatus = Literal[
    "completed",
    "rejected",
    "blocked",
    "stopped_over_budget",
    "provider_failure",
    "expired",
    "rate_limited",
]


class TetherResult(BaseModel):
    """Fields every Tether workflow result carries, so callers see outcome, cost and confidence."""

    status: RunResultStatus = "completed"
    halted_step: str | None = None
    halted_reason: str | None = None
    cost_usd: float = 0.0
    steps: list[StepStatus] = []
