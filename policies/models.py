"""The policy file's schema: everything an operator tunes, validated by pydantic.

A policy is plain data. The functions that apply it (``policies.confidence``,
``policies.budgets``, ``policies.routing``, ...) are pure and never do I/O.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.cache_settings import CachePolicy
from policies.eval_settings import EvalPolicy
from policies.guard_routing import ModelTier, ProviderHealthPolicy, RouteRulesPolicy
from policies.guard_settings import InjectionGuardSettings, PiiGuardSettings
from policies.limits import LimitsPolicy
from policies.retention_settings import RetentionPolicy

GateOutcome = Literal["accept", "review", "escalate", "block"]
"""What a step's confidence gate decides: accept automatically, ask a reviewer, escalate, block."""

OverBudgetAction = Literal["approve_spend", "downgrade", "stop"]
OversizeAction = Literal["truncate", "summarize", "escalate"]
TimeoutDefault = Literal["approve", "reject", "fail"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelPrice(_Strict):
    """USD per million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


def _simulated_tiers() -> dict[ModelTier, list[str]]:
    return {"cheap": ["simulated/cheap"], "strong": ["simulated/strong"]}


class RoutingPolicy(_Strict):
    """Which models serve each tier, in fallback order.

    Models are named ``provider/model`` (``openai/gpt-4o-mini``). Models whose provider has no
    credentials are skipped; when none is left the tier falls back to ``simulated/<tier>``.
    """

    tiers: dict[ModelTier, list[str]] = Field(default_factory=lambda: _simulated_tiers())
    complex_input_chars: int = Field(
        default=4000, gt=0, description="Inputs longer than this route 'auto' steps to strong."
    )
    downgrade: dict[str, str] = Field(
        default_factory=dict, description="Model -> cheaper model used by the 'downgrade' action."
    )


class ConfidenceWeights(_Strict):
    schema_validity: float = Field(default=0.3, ge=0)
    logprobs: float = Field(default=0.3, ge=0)
    self_consistency: float = Field(default=0.2, ge=0)
    judge: float = Field(default=0.2, ge=0)
    rules: float = Field(default=0.2, ge=0)


class GateThresholds(_Strict):
    """Score >= accept -> accept; >= review -> review; >= escalate -> escalate; else block."""

    accept: float = Field(default=0.8, ge=0, le=1)
    review: float = Field(default=0.5, ge=0, le=1)
    escalate: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> GateThresholds:
        if not (self.accept >= self.review >= self.escalate):
            raise ValueError("thresholds must satisfy accept >= review >= escalate")
        return self


class RuleCheck(_Strict):
    """A declarative check on one field of a step's output."""

    name: str
    field: str
    min_length: int | None = None
    max_length: int | None = None
    one_of: list[str] | None = None
    not_contains: list[str] | None = None
    pattern: str | None = None


class StepConfidencePolicy(_Strict):
    weights: ConfidenceWeights = ConfidenceWeights()
    thresholds: GateThresholds = GateThresholds()
    max_repairs: int = Field(default=2, ge=0, le=5)
    samples: int = Field(default=1, ge=1, le=7, description="N > 1 enables self-consistency.")
    judge: bool = False
    judge_when: Literal["always", "decisive"] = Field(
        default="always",
        description="'decisive': ask the judge only when its score could change the gate's "
        "outcome (the other signals leave the score where any judge score would move it across "
        "a threshold); the outcome is the same as with 'always', at a fraction of the judge calls.",
    )
    rules: list[RuleCheck] = Field(default_factory=list)


class BudgetPolicy(_Strict):
    per_run_usd: float | None = Field(default=1.0, gt=0)
    per_user_daily_usd: float | None = Field(default=10.0, gt=0)
    per_tenant_monthly_usd: float | None = Field(default=1000.0, gt=0)
    on_exceed: OverBudgetAction = "approve_spend"


class BudgetAlertPolicy(_Strict):
    """When spend crossing a share of a budget is announced (Slack and the audit log), once per
    threshold, scope (a run, a user's day, a tenant's month) and period."""

    thresholds: list[float] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0],
        description="Shares of each budget (per_run_usd, per_user_daily_usd, "
        "per_tenant_monthly_usd) that raise an alert once crossed.",
    )
    slack_channel: str | None = Field(
        default=None, description="Where alerts are posted (default: SLACK_CHANNEL)."
    )
    resend_every: timedelta = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        description="How often a worker looks for alerts Slack did not take; also the first "
        "wait after a failed send (it doubles with each failure, up to an hour).",
    )
    resend_for: timedelta = Field(
        default=timedelta(days=1),
        ge=timedelta(minutes=10),
        description="How long an alert Slack did not take is tried again; older ones stay in "
        "the audit log and on the dashboard only. At least 10 min: longer than a send's 5-min "
        "lease, or an alert whose sender died would never be resent.",
    )

    @model_validator(mode="after")
    def _valid_shares(self) -> BudgetAlertPolicy:
        if any(not 0 < share <= 10 for share in self.thresholds):
            raise ValueError("alert thresholds are shares of a budget: above 0, at most 10")
        return self


class InputGuardPolicy(_Strict):
    """The context guard: what to do with inputs too large for the model."""

    max_input_chars: int = Field(default=24_000, gt=0)
    on_oversize: OversizeAction = "truncate"


class ReviewTimeouts(_Strict):
    remind_after: timedelta | None = timedelta(hours=4)
    escalate_after: timedelta | None = timedelta(hours=24)
    escalate_to_role: str | None = None
    escalate_to_channel: str | None = None
    default_after: timedelta | None = timedelta(hours=72)
    default_action: TimeoutDefault = "fail"


class ReviewPolicy(_Strict):
    roles: list[str] = Field(default_factory=lambda: ["reviewer"])
    slack_channel: str | None = None
    expires_after: timedelta = timedelta(days=7)
    timeouts: ReviewTimeouts = ReviewTimeouts()


class WorkflowPolicy(_Strict):
    """Per-workflow overrides; unset fields inherit the top-level defaults."""

    starters: list[str] | None = Field(
        default=None, description="Roles that may start this workflow (default: top-level)."
    )
    budgets: BudgetPolicy | None = None
    review: ReviewPolicy | None = None
    input_guard: InputGuardPolicy | None = None
    limits: LimitsPolicy | None = None
    pii: PiiGuardSettings | None = None
    injection: InjectionGuardSettings | None = None
    steps: dict[str, StepConfidencePolicy] = Field(default_factory=dict)


ALL_TENANTS = "*"


class Reviewer(_Strict):
    """A login of the review UI and API.

    ``password_hash`` is an argon2 hash (``tether hash-password``); a plaintext ``password`` is
    accepted only under ``TETHER_ENV=dev``. ``tenants`` limits the runs this login may start and
    the review items it sees and decides (``"*"``: every tenant).
    """

    name: str = Field(min_length=1, max_length=200)
    password: str | None = None
    password_hash: str | None = Field(default=None, pattern=r"^\$argon2(id|i|d)\$")
    roles: list[str]
    tenants: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    slack_user_id: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Reviewer:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password_hash (argon2) or password (dev only)")
        return self

    def sees_tenant(self, tenant: str) -> bool:
        """Whether this login may see, start and decide work of ``tenant``."""
        return ALL_TENANTS in self.tenants or tenant in self.tenants


class TetherPolicy(_Strict):
    """The whole policy file."""

    prices: dict[str, ModelPrice]
    routing: RoutingPolicy = RoutingPolicy()
    route_rules: RouteRulesPolicy | None = Field(
        default=None,
        description="Rules choosing the tier of an auto step; None: routing.complex_input_chars.",
    )
    provider_health: ProviderHealthPolicy = ProviderHealthPolicy()
    confidence: StepConfidencePolicy = StepConfidencePolicy()
    budgets: BudgetPolicy = BudgetPolicy()
    alerts: BudgetAlertPolicy = BudgetAlertPolicy()
    input_guard: InputGuardPolicy = InputGuardPolicy()
    pii: PiiGuardSettings = PiiGuardSettings()
    injection: InjectionGuardSettings = InjectionGuardSettings()
    review: ReviewPolicy = ReviewPolicy()
    limits: LimitsPolicy = LimitsPolicy()
    starters: list[str] = Field(
        default_factory=list,
        description="Roles that may start runs of workflows without their own.",
    )
    workflows: dict[str, WorkflowPolicy] = Field(default_factory=dict)
    reviewers: list[Reviewer] = Field(default_factory=list)
    eval: EvalPolicy = EvalPolicy()
    cache: CachePolicy = CachePolicy()
    retention: RetentionPolicy = RetentionPolicy()
