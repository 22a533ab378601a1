"""Policy for production routing guards: circuit breakers, per-call timeouts and routing rules.

Plain, validated data like ``policies.models``; the functions that apply it live in
``policies.breaker`` (the breaker state machine), ``policies.route_features`` (input features)
and ``policies.route_rules`` (the rule evaluator). ``TetherPolicy`` references them as
``route_rules`` and ``provider_health``.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BreakerPolicy",
    "ModelTier",
    "ProviderHealthPolicy",
    "RouteRule",
    "RouteRulesPolicy",
    "RouteWhen",
    "WindowKind",
]

_T = TypeVar("_T")

ModelTier = Literal["cheap", "strong"]
"""The model tiers a policy routes to (defined here so ``policies.models`` can import this
module; ``policies.models`` re-exports it)."""

WindowKind = Literal["count", "time"]
"""A breaker's sliding window: the last ``window_calls`` calls, or the calls of ``window_s``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreakerPolicy(_Strict):
    """When a provider/model's breaker opens, how long it stays open and how it probes.

    Closed → open when the window holds ``failure_threshold`` counted failures, or when at least
    ``min_calls`` calls are in it and the share taking ``slow_call_s`` or longer reaches
    ``slow_call_rate``. Open for a cool-down that starts at ``cooldown_s`` and is multiplied by
    ``cooldown_multiplier`` each time a probe fails, up to ``max_cooldown_s``. Then half-open:
    ``half_open_probes`` calls go through; all of them succeeding closes the breaker, any of them
    failing (or being slow) re-opens it. Which errors count as failures: ``policies.breaker.classify``.
    """

    failure_threshold: int = Field(default=5, ge=1, description="Failures in the window to open.")
    window: WindowKind = "count"
    window_calls: int = Field(default=20, ge=1, description="Size of a count-based window.")
    window_s: float = Field(default=60.0, gt=0, description="Length of a time-based window.")
    slow_call_s: float = Field(
        default=30.0, gt=0, description="A call this slow or slower is slow."
    )
    slow_call_rate: float = Field(
        default=0.5, gt=0, le=1, description="Share of slow calls in the window that opens."
    )
    min_calls: int = Field(
        default=10, ge=1, description="Calls the window needs before the slow-call rate counts."
    )
    cooldown_s: float = Field(default=30.0, gt=0)
    cooldown_multiplier: float = Field(default=2.0, ge=1)
    max_cooldown_s: float = Field(default=300.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)
    probe_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="A probe not reported back within this time is lost; its slot frees up.",
    )
    rate_limit_is_failure: bool = Field(
        default=False,
        description="Whether a 429 counts as a failure; otherwise the breaker ignores it.",
    )

    @model_validator(mode="after")
    def _cooldown_cap(self) -> BreakerPolicy:
        if self.max_cooldown_s < self.cooldown_s:
            raise ValueError("max_cooldown_s must be >= cooldown_s")
        if self.window == "count" and self.min_calls > self.window_calls:
            raise ValueError(
                "min_calls must be <= window_calls, or the slow-call rate can never open the breaker"
            )
        return self


class ProviderHealthPolicy(_Strict):
    """Breakers and call timeouts for every provider/model a worker calls."""

    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    breakers: dict[str, BreakerPolicy] = Field(
        default_factory=dict, description="provider/model (or provider) -> its own breaker policy."
    )
    call_timeout_s: float = Field(default=60.0, gt=0, description="Per-call timeout.")
    call_timeouts_s: dict[str, float] = Field(
        default_factory=dict, description="provider/model (or provider) -> its own call timeout."
    )
    stats_window_s: float = Field(
        default=300.0, gt=0, description="Window of the error rate and latency percentiles."
    )
    publish_every_s: float = Field(
        default=10.0, gt=0, description="How often a worker publishes its view to the store."
    )
    stale_after_s: float = Field(
        default=60.0, gt=0, description="A worker's rows older than this are shown as stale."
    )

    @model_validator(mode="after")
    def _positive_timeouts(self) -> ProviderHealthPolicy:
        bad = sorted(model for model, timeout in self.call_timeouts_s.items() if timeout <= 0)
        if bad:
            raise ValueError(f"call_timeouts_s must be > 0: {', '.join(bad)}")
        return self

    def breaker_for(self, model_id: str) -> BreakerPolicy:
        """The breaker policy of ``model_id``: its own, else its provider's, else the default."""
        return _most_specific(self.breakers, model_id) or self.breaker

    def call_timeout_for(self, model_id: str) -> float:
        """The per-call timeout of ``model_id``: its own, else its provider's, else the default."""
        return _most_specific(self.call_timeouts_s, model_id) or self.call_timeout_s


def _most_specific(table: dict[str, _T], model_id: str) -> _T | None:
    if model_id in table:
        return table[model_id]
    return table.get(model_id.split("/", 1)[0])


class RouteWhen(_Strict):
    """The conditions of a routing rule; all given ones must hold (none given is invalid).

    Languages are the codes ``policies.route_features.detect_language`` returns (``en``, ``de``,
    ``zh``, ...; ``und`` when it cannot tell). ``language_not`` ignores undetermined text, so a
    short "thanks!" does not count as foreign.
    """

    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    language: list[str] | None = None
    language_not: list[str] | None = None
    has_code: bool | None = None
    min_questions: int | None = Field(default=None, ge=0)
    min_attachments: int | None = Field(default=None, ge=0)
    min_links: int | None = Field(default=None, ge=0)
    tenant: list[str] | None = None
    workflow: list[str] | None = None
    step: list[str] | None = None
    learned: bool | None = Field(
        default=None,
        description="True: the learned rule reports that the nearest past inputs were rejected "
        "or edited by reviewers; False: it does not (or there is no learned rule).",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> RouteWhen:
        if not self.model_fields_set:
            raise ValueError("a rule needs at least one condition; use default_tier otherwise")
        return self


class RouteRule(_Strict):
    """``when`` all its conditions hold, the step goes to ``tier``."""

    when: RouteWhen
    tier: ModelTier
    name: str | None = Field(default=None, description="Shown in the recorded reason.")


class RouteRulesPolicy(_Strict):
    """Rules choosing the tier of an ``auto`` step; the first matching rule wins."""

    rules: list[RouteRule] = Field(default_factory=list)
    default_tier: ModelTier = "cheap"
