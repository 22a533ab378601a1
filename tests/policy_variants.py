"""Derive test policies from the embedded default, changing only what a test is about."""

from __future__ import annotations

from typing import Any

from policies.models import (
    BudgetPolicy,
    GateThresholds,
    ModelPrice,
    RoutingPolicy,
    StepConfidencePolicy,
    TetherPolicy,
    WorkflowPolicy,
)


def gated(
    policy: TetherPolicy, *, accept: float, review: float = 0.0, escalate: float = 0.0
) -> TetherPolicy:
    """Every step of every workflow gated at these thresholds (accept=0: all pass; 1: all pause)."""
    thresholds = GateThresholds(accept=accept, review=review, escalate=escalate)
    confidence = policy.confidence.model_copy(update={"thresholds": thresholds})
    workflows = {
        name: wf.model_copy(
            update={
                "steps": {
                    step: sp.model_copy(update={"thresholds": thresholds})
                    for step, sp in wf.steps.items()
                }
            }
        )
        for name, wf in policy.workflows.items()
    }
    return policy.model_copy(update={"confidence": confidence, "workflows": workflows})


def with_budgets(policy: TetherPolicy, **budget: Any) -> TetherPolicy:
    """Top-level budgets replaced, and every workflow override dropped so they apply."""
    workflows = {
        name: wf.model_copy(update={"budgets": None}) for name, wf in policy.workflows.items()
    }
    return policy.model_copy(update={"budgets": BudgetPolicy(**budget), "workflows": workflows})


def routed(
    policy: TetherPolicy, cheap: list[str], strong: list[str] | None = None, **prices: ModelPrice
) -> TetherPolicy:
    routing = RoutingPolicy(
        tiers={"cheap": cheap, "strong": strong or cheap},
        complex_input_chars=policy.routing.complex_input_chars,
        downgrade=policy.routing.downgrade,
    )
    return policy.model_copy(update={"routing": routing, "prices": policy.prices | prices})


def for_workflow(policy: TetherPolicy, workflow: str, override: WorkflowPolicy) -> TetherPolicy:
    return policy.model_copy(update={"workflows": policy.workflows | {workflow: override}})


def step_policy(**fields: Any) -> StepConfidencePolicy:
    return StepConfidencePolicy(**fields)


def judging_always(policy: TetherPolicy) -> TetherPolicy:
    """The judge asked for every valid answer (``judge_when: always``), as tests that count its
    calls expect, instead of only where it could change the outcome (the shipped policy)."""
    confidence = policy.confidence.model_copy(update={"judge_when": "always"})
    return policy.model_copy(update={"confidence": confidence})
