"""The confidence score of a step's output, its breakdown and the gate outcome it leads to."""

from __future__ import annotations

import math
import re
from typing import Any

from policies.models import GateOutcome, GateThresholds, StepConfidencePolicy
from policies.values import ConfidenceComponent, ConfidenceReport, ConfidenceSignals

__all__ = ["agreement", "gate_outcome", "judge_is_decisive", "score_confidence"]

_SCORE_DECIMALS = 4
"""The score is rounded before it meets the thresholds, so the shown score explains the outcome."""


def score_confidence(signals: ConfidenceSignals, policy: StepConfidencePolicy) -> ConfidenceReport:
    """Scores a step's output from its signals and decides the gate outcome.

    Each present signal becomes a component in [0, 1] weighted by the policy. Absent signals
    (no logprobs, one sample, no judge, no rules) are left out and the weights of the present
    ones are renormalised. A component whose weight is 0 is shown but not counted. An output
    that failed schema validation is capped at the review threshold and is never accepted.

    Args:
        signals: Evidence gathered by the LLM step.
        policy: The step's confidence policy (weights, thresholds).

    Returns:
        The score, its components, the outcome and reasons a reviewer can read.
    """
    thresholds = policy.thresholds
    components = _components(signals, policy)
    counted = [c for c in components if c.weight > 0]
    if counted:
        raw = sum(c.value * c.weight for c in counted) / sum(c.weight for c in counted)
    else:
        # Every present signal has weight 0: an unweighted mean beats a meaningless 0 or 1.
        raw = sum(c.value for c in components) / len(components)
    score = round(min(max(raw, 0.0), 1.0), _SCORE_DECIMALS)
    if not signals.schema_valid:
        score = min(score, thresholds.review)
    outcome = gate_outcome(score, thresholds)
    if not signals.schema_valid and outcome == "accept":
        # Only reachable when accept == review: an invalid output still needs a human.
        outcome = "review"
    return ConfidenceReport(
        score=score,
        components=components,
        outcome=outcome,
        thresholds=thresholds,
        reasons=_reasons(score, outcome, signals, components, thresholds),
    )


def judge_is_decisive(signals: ConfidenceSignals, policy: StepConfidencePolicy) -> bool:
    """Whether a judge's score could change the gate's outcome, given the other signals.

    The score is a weighted mean, so it moves monotonically with the judge's score: the
    outcomes at a judge score of 0 and of 1 bound every outcome a judge could lead to. When
    they are the same, the judge cannot change what happens to the output. Its score is then
    left out, and the score of the other signals lies between those bounds, so the gate's
    outcome is the one the judge would have led to.
    """
    if not signals.schema_valid:
        return False  # an invalid output is never judged
    low = score_confidence(signals.model_copy(update={"judge_score": 0.0}), policy)
    high = score_confidence(signals.model_copy(update={"judge_score": 1.0}), policy)
    return low.outcome != high.outcome


def gate_outcome(score: float, thresholds: GateThresholds) -> GateOutcome:
    """Maps a score to the gate outcome: >= accept, >= review, >= escalate, else block."""
    if score >= thresholds.accept:
        return "accept"
    if score >= thresholds.review:
        return "review"
    if score >= thresholds.escalate:
        return "escalate"
    return "block"


def agreement(main: dict[str, Any], samples: list[dict[str, Any]]) -> float:
    """Returns the fraction of ``samples`` equal to ``main``: the self-consistency signal.

    Strings are compared after stripping, lower-casing and collapsing whitespace, so
    ``"Billing "`` agrees with ``"billing"``.

    Raises:
        ValueError: ``samples`` is empty; there is no self-consistency signal without samples.
    """
    if not samples:
        raise ValueError("agreement needs at least one sample")
    reference = _normalised(main)
    return sum(_normalised(sample) == reference for sample in samples) / len(samples)


def _components(
    signals: ConfidenceSignals, policy: StepConfidencePolicy
) -> list[ConfidenceComponent]:
    weights = policy.weights
    components = [_schema_component(signals, weights.schema_validity)]
    if signals.mean_logprob is not None and not math.isnan(signals.mean_logprob):
        components.append(
            ConfidenceComponent(
                name="logprobs",
                value=_unit(math.exp(min(signals.mean_logprob, 0.0))),
                weight=weights.logprobs,
                detail=f"mean token logprob {signals.mean_logprob:.3f}",
            )
        )
    if signals.self_consistency is not None and not math.isnan(signals.self_consistency):
        value = _unit(signals.self_consistency)
        components.append(
            ConfidenceComponent(
                name="self_consistency",
                value=value,
                weight=weights.self_consistency,
                detail=f"{value:.0%} of samples agree",
            )
        )
    if signals.judge_score is not None and not math.isnan(signals.judge_score):
        value = _unit(signals.judge_score)
        components.append(
            ConfidenceComponent(
                name="judge", value=value, weight=weights.judge, detail=f"judge scored {value:.2f}"
            )
        )
    if signals.rule_results:
        passed = sum(signals.rule_results.values())
        total = len(signals.rule_results)
        components.append(
            ConfidenceComponent(
                name="rules",
                value=passed / total,
                weight=weights.rules,
                detail=f"{passed}/{total} rules passed",
            )
        )
    return components


def _schema_component(signals: ConfidenceSignals, weight: float) -> ConfidenceComponent:
    repairs = max(signals.repairs, 0)
    if not signals.schema_valid:
        detail = "invalid" if repairs == 0 else f"invalid after {_repairs(repairs)}"
        return ConfidenceComponent(name="schema_validity", value=0.0, weight=weight, detail=detail)
    value = _unit(1 - repairs / (max(signals.max_repairs, 0) + 1))
    detail = "valid" if repairs == 0 else f"valid after {_repairs(repairs)}"
    return ConfidenceComponent(name="schema_validity", value=value, weight=weight, detail=detail)


def _reasons(
    score: float,
    outcome: GateOutcome,
    signals: ConfidenceSignals,
    components: list[ConfidenceComponent],
    thresholds: GateThresholds,
) -> list[str]:
    reasons: list[str] = []
    if outcome != "accept":
        reasons.append(f"score {score:.2f} is below the accept threshold {thresholds.accept:.2f}")
    if not signals.schema_valid:
        reasons.append("output does not match the schema, so it cannot be accepted automatically")
    if signals.repairs > 0:
        reasons.append(f"{_repairs(signals.repairs)} needed")
    for component in components:
        for line in _component_reasons(component, signals, thresholds):
            reasons.append(line if component.weight > 0 else f"{line} (weight 0, not counted)")
    return reasons


def _component_reasons(
    component: ConfidenceComponent, signals: ConfidenceSignals, thresholds: GateThresholds
) -> list[str]:
    low = component.value < thresholds.accept
    match component.name:
        case "logprobs" if low:
            return [f"logprobs low ({component.value:.2f})"]
        case "self_consistency" if low:
            return [f"samples disagree (agreement {component.value:.2f})"]
        case "judge" if low:
            return [f"judge score low ({component.value:.2f})"]
        case "rules":
            return [f"rule {name} failed" for name, ok in signals.rule_results.items() if not ok]
    return []


def _repairs(count: int) -> str:
    return f"{count} repair" if count == 1 else f"{count} repairs"


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"\s+", " ", value.strip().lower())
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value
