"""Which models serve a step, and why: the routing rules on the step, its input and its tenant.

An ``auto`` step's tier comes from ``policy.route_rules`` (``policies.route_rules``) applied to
the features of its input (the step's variables, large texts included); without that section,
from the input's length (``routing.complex_input_chars``). The tier's configured models make the
route, in fallback order. The decision and its reason are recorded per step as a
``GuardEvent(guard="route")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from activities.deps import ActivityDeps
from policies.models import ModelTier
from policies.route_features import RouteRequest, input_features
from policies.route_rules import LearnedRule, route_tier
from policies.routing import TierChoice, resolve_tier, route_model
from tether.contracts import GuardEvent, LlmStepInput

__all__ = ["StepRoute", "route_request", "step_route"]


@dataclass(frozen=True)
class StepRoute:
    """A step's fallback chain, the tier it came from (None: the step names its model) and why."""

    models: list[str]
    tier: ModelTier | None
    reason: str

    def event(self, model: str) -> GuardEvent:
        """The route decision as recorded on the step, for the model that served it."""
        return GuardEvent(
            guard="route", outcome=self.tier or "model", detail=f"{self.reason}; model {model}"
        )


FEATURE_PREFIX_CHARS = 8000
"""Language, code, questions, links and attachments are measured on the input's first this many
characters (the scan is linear but runs on the worker's event loop, and a document step's input
can be 200,000 characters); size and tokens cover the whole input, scaled from the prefix."""


def route_request(inp: LlmStepInput, variables: Mapping[str, str]) -> RouteRequest:
    """What the routing rules look at: the features of the step's input and where it runs."""
    text = "\n\n".join(variables.values())
    features = input_features(text[:FEATURE_PREFIX_CHARS])
    if len(text) > FEATURE_PREFIX_CHARS:
        scale = len(text) / FEATURE_PREFIX_CHARS
        features = features.model_copy(
            update={"chars": len(text), "tokens": round(features.tokens * scale)}
        )
    return RouteRequest(
        features=features,
        tenant=inp.tenant,
        workflow=inp.workflow,
        step=inp.step,
    )


def step_route(
    deps: ActivityDeps,
    *,
    tier: TierChoice,
    model: str | None,
    input_chars: int,
    request: RouteRequest | None,
    learned: LearnedRule | None = None,
) -> StepRoute:
    """The step's route: the model it names, else its tier's available models.

    Args:
        tier: The tier the step asks for (``auto``: the rules decide).
        model: A model the step (or a downgrade) names; it is then the whole route.
        input_chars: The input's size, for the length rule when the policy has no route_rules.
        request: The input's features; None (a caller without the input) uses the length rule.
        learned: The learned rule for this input (else the worker's ``deps.learned_rule``).
    """
    if model:
        return StepRoute(models=[model], tier=None, reason=f"step runs on {model}")
    routing, rules = deps.policy.routing, deps.policy.route_rules
    if rules is not None and request is not None:
        decision = route_tier(rules, tier, request, learned or deps.learned_rule)
        chosen, reason = decision.tier, decision.reason
    else:
        chosen = resolve_tier(routing, tier, input_chars)
        reason = (
            f"input {input_chars} chars vs {routing.complex_input_chars} → {chosen}"
            if tier == "auto"
            else f"step asks for {chosen}"
        )
    models = route_model(routing, chosen, input_chars, deps.providers.available)
    return StepRoute(models=models, tier=chosen, reason=reason)
