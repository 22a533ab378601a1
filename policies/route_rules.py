"""Routing rules: which tier an ``auto`` step gets from its input's features, and why.

:func:`choose_tier` applies ``RouteRulesPolicy``: the first rule whose conditions all hold wins,
else the default tier, and the decision carries the reason to record ("rule 2: has_code →
strong"). A learned rule (reviewers rejected or edited the answers to the nearest past inputs)
plugs in as a :class:`LearnedRule`; the store feeds it later.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from policies.guard_routing import RouteRulesPolicy, RouteWhen
from policies.models import ModelTier
from policies.route_features import UNDETERMINED, RouteRequest
from policies.routing import TierChoice

__all__ = [
    "LearnedRule",
    "LearnedVerdict",
    "TierDecision",
    "choose_tier",
    "route_tier",
    "uses_learned",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LearnedVerdict(_Frozen):
    """What the learned rule says about an input, e.g. ``troubled=True, reason="4 of 5 nearest
    past inputs rejected or edited"``."""

    troubled: bool
    reason: str


class LearnedRule(Protocol):
    """Looks at an input's nearest past inputs; None when it has nothing to say."""

    def __call__(self, request: RouteRequest) -> LearnedVerdict | None: ...


class TierDecision(_Frozen):
    """The tier a step gets, the rule that chose it (1-based; None: default or explicit), why."""

    tier: ModelTier
    rule: int | None
    reason: str


class _Learned:
    """Asks the learned rule at most once per decision, and only when a rule needs it."""

    def __init__(self, rule: LearnedRule | None, request: RouteRequest) -> None:
        self._rule = rule
        self._request = request
        self._asked = False
        self._verdict: LearnedVerdict | None = None

    def verdict(self) -> LearnedVerdict | None:
        if not self._asked:
            self._asked = True
            if self._rule is not None:
                try:
                    self._verdict = self._rule(self._request)
                except Exception:  # a routing hint must never fail the step
                    self._verdict = None
        return self._verdict


def _listed(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _conditions(when: RouteWhen, request: RouteRequest, learned: _Learned) -> list[str] | None:
    """The reasons ``when`` holds for ``request``, or None when one of its conditions fails."""
    features = request.features
    checks: list[tuple[bool, str]] = []
    if when.min_tokens is not None:
        checks.append(
            (features.tokens >= when.min_tokens, f"tokens {features.tokens} ≥ {when.min_tokens}")
        )
    if when.max_tokens is not None:
        checks.append(
            (features.tokens <= when.max_tokens, f"tokens {features.tokens} ≤ {when.max_tokens}")
        )
    if when.language is not None:
        allowed = [code.lower() for code in when.language]
        checks.append(
            (features.language in allowed, f"language {features.language} in {_listed(allowed)}")
        )
    if when.language_not is not None:
        excluded = [code.lower() for code in when.language_not]
        foreign = features.language != UNDETERMINED and features.language not in excluded
        checks.append((foreign, f"language {features.language} not in {_listed(excluded)}"))
    if when.has_code is not None:
        checks.append(
            (features.has_code == when.has_code, "has_code" if when.has_code else "no code")
        )
    for name, minimum, value in (
        ("questions", when.min_questions, features.questions),
        ("attachments", when.min_attachments, features.attachments),
        ("links", when.min_links, features.links),
    ):
        if minimum is not None:
            checks.append((value >= minimum, f"{name} {value} ≥ {minimum}"))
    for name, allowed_values, actual in (
        ("tenant", when.tenant, request.tenant),
        ("workflow", when.workflow, request.workflow),
        ("step", when.step, request.step),
    ):
        if allowed_values is not None:
            checks.append((actual in allowed_values, f"{name} {actual}"))
    if not all(holds for holds, _ in checks):
        return None
    reasons = [reason for _, reason in checks]
    if when.learned is not None:  # last: the learned rule may be costly to ask
        verdict = learned.verdict()
        troubled = verdict is not None and verdict.troubled
        if troubled != when.learned:
            return None
        reasons.append(f"learned: {verdict.reason}" if verdict else "learned: no signal")
    return reasons


def uses_learned(policy: RouteRulesPolicy | None) -> bool:
    """Whether any rule asks the learned rule (embedding the input is then worth it)."""
    return policy is not None and any(rule.when.learned is not None for rule in policy.rules)


def choose_tier(
    policy: RouteRulesPolicy, request: RouteRequest, learned: LearnedRule | None = None
) -> TierDecision:
    """The tier for an ``auto`` step: the first rule whose conditions all hold, else the default.

    Args:
        policy: The routing rules.
        request: The input's features, tenant, workflow and step.
        learned: The learned rule, asked only when a rule has a ``learned`` condition; without
            one (or when it fails) it has no signal.
    """
    asked = _Learned(learned, request)
    for number, rule in enumerate(policy.rules, start=1):
        reasons = _conditions(rule.when, request, asked)
        if reasons is not None:
            label = f"rule {number}" + (f" ({rule.name})" if rule.name else "")
            return TierDecision(
                tier=rule.tier, rule=number, reason=f"{label}: {', '.join(reasons)} → {rule.tier}"
            )
    return TierDecision(
        tier=policy.default_tier,
        rule=None,
        reason=f"default: no rule matched → {policy.default_tier}",
    )


def route_tier(
    policy: RouteRulesPolicy,
    tier: TierChoice,
    request: RouteRequest,
    learned: LearnedRule | None = None,
) -> TierDecision:
    """A step's tier: the one it names, or for ``auto`` the rules' choice."""
    if tier == "auto":
        return choose_tier(policy, request, learned)
    return TierDecision(tier=tier, rule=None, reason=f"step asks for {tier}")
