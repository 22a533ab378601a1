"""Model routing: which models serve a step, in fallback order, and what a downgrade switches to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, assert_never

from policies.models import ModelTier, RoutingPolicy

__all__ = ["TierChoice", "downgrade_for", "resolve_tier", "route_model", "simulated_model"]

TierChoice = ModelTier | Literal["auto"]
"""A step's tier as a workflow asks for it; ``auto`` is decided by input size."""


def simulated_model(tier: ModelTier) -> str:
    """The simulated model standing in for ``tier`` when no real provider is available."""
    return f"simulated/{tier}"


def resolve_tier(routing: RoutingPolicy, tier: TierChoice, input_chars: int) -> ModelTier:
    """Resolves ``auto``: inputs longer than ``complex_input_chars`` go strong, others cheap."""
    if tier == "auto":
        return "strong" if input_chars > routing.complex_input_chars else "cheap"
    if tier == "cheap" or tier == "strong":
        return tier
    assert_never(tier)


def route_model(
    routing: RoutingPolicy,
    tier: TierChoice,
    input_chars: int,
    available: Callable[[str], bool],
) -> list[str]:
    """Returns the fallback chain of model ids for a step, best first.

    Args:
        routing: The routing policy.
        tier: ``cheap``, ``strong`` or ``auto`` (decided by input size).
        input_chars: Size of the step's input, for ``auto``.
        available: Whether a model can be called now (its provider has credentials).

    Returns:
        The tier's available models in policy order, or ``["simulated/<tier>"]`` when none is.
    """
    resolved = resolve_tier(routing, tier, input_chars)
    chain = [model for model in dict.fromkeys(routing.tiers.get(resolved, [])) if available(model)]
    return chain or [simulated_model(resolved)]


def downgrade_for(
    routing: RoutingPolicy,
    model_id: str,
    available: Callable[[str], bool] | None = None,
) -> str | None:
    """Returns the cheaper model the ``downgrade`` budget action switches ``model_id`` to.

    The explicit ``routing.downgrade`` map wins when its target is available; otherwise a model
    of the strong tier downgrades to the first available cheap model, and ``simulated/strong``
    to ``simulated/cheap``. A real model is never downgraded to a simulated one: that would
    silently replace real answers with fake ones.

    Args:
        routing: The routing policy.
        model_id: The model the step would use.
        available: Whether a model can be called now; None treats every model as available.

    Returns:
        The cheaper model, or None when there is none (the caller then asks for approval).
    """

    def usable(model: str) -> bool:
        return model != model_id and (available is None or available(model))

    explicit = routing.downgrade.get(model_id)
    if explicit is not None and usable(explicit):
        return explicit
    if model_id == simulated_model("strong"):
        return simulated_model("cheap")
    if model_id in routing.tiers.get("strong", []):
        cheap = [m for m in routing.tiers.get("cheap", []) if usable(m)]
        real = [m for m in cheap if not m.startswith("simulated/")]
        return real[0] if real else None
    return None
