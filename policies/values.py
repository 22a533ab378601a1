"""Value types produced by applying a policy: usage, confidence reports, budget checks."""

from __future__ import annotations

from pydantic import BaseModel, Field

from policies.models import GateOutcome, GateThresholds, OverBudgetAction


class Usage(BaseModel):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class ConfidenceSignals(BaseModel):
    """Raw evidence about one step's output, gathered by the LLM step activity."""

    schema_valid: bool
    repairs: int = 0
    max_repairs: int = 2
    mean_logprob: float | None = None
    """Mean token log-probability of the accepted answer, when the provider returns them."""
    self_consistency: float | None = None
    """Fraction of extra samples that agreed with the answer, in [0, 1]."""
    judge_score: float | None = None
    """LLM-as-judge score in [0, 1]."""
    rule_results: dict[str, bool] = Field(default_factory=dict)


class ConfidenceComponent(BaseModel):
    name: str
    value: float = Field(ge=0, le=1)
    weight: float = Field(ge=0)
    detail: str = ""


class ConfidenceReport(BaseModel):
    """A step's confidence score in [0, 1], its breakdown and the gate outcome."""

    score: float = Field(ge=0, le=1)
    components: list[ConfidenceComponent]
    outcome: GateOutcome
    thresholds: GateThresholds
    reasons: list[str] = Field(default_factory=list)


class BudgetScopeStatus(BaseModel):
    scope: str
    """``run``, ``user_daily`` or ``tenant_monthly``."""
    limit_usd: float
    spent_usd: float
    reserved_usd: float


class BudgetCheck(BaseModel):
    """Outcome of a cost checkpoint."""

    allowed: bool
    estimate_usd: float
    action: OverBudgetAction | None = None
    """Set when not allowed: what the policy says to do."""
    exceeded: list[BudgetScopeStatus] = Field(default_factory=list)
    scopes: list[BudgetScopeStatus] = Field(default_factory=list)
    downgrade_model: str | None = None
    message: str = ""
