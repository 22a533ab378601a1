"""Effective policies: a workflow's section laid over the defaults, field by field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies.effective import (
    effective_for,
    overlay,
    reviewer_by_name,
    reviewer_by_slack_id,
    step_confidence,
)
from policies.loader import load_policy, load_policy_text
from policies.models import GateThresholds
from tether.core.errors import ConfigurationError

DEFAULT = load_policy()


def test_support_triage_overrides_review_and_keeps_the_rest() -> None:
    effective = effective_for(DEFAULT, "support_triage")
    assert effective.review.roles == ["support", "lead"]
    assert effective.review.slack_channel == "#support-escalations"
    # Not set by the workflow: inherited from the top-level review, not the model defaults.
    assert effective.review.timeouts.escalate_to_role == "lead"
    assert effective.review.timeouts.remind_after == timedelta(hours=4)
    assert effective.budgets == DEFAULT.budgets
    assert effective.input_guard == DEFAULT.input_guard


def test_document_summary_raises_the_input_limit_and_switches_to_summarize() -> None:
    guard = effective_for(DEFAULT, "document_summary").input_guard
    assert (guard.max_input_chars, guard.on_oversize) == (200_000, "summarize")


def test_steps_inherit_unset_fields_from_the_top_level_confidence() -> None:
    classify = step_confidence(DEFAULT, "support_triage", "classify")
    assert classify.samples == 3
    assert classify.thresholds == DEFAULT.confidence.thresholds  # 0.75, not the model's 0.8
    assert classify.judge is True
    assert [rule.name for rule in classify.rules] == ["category_known", "priority_known"]
    summary = step_confidence(DEFAULT, "document_summary", "final_summary")
    assert summary.judge is False
    assert summary.weights == DEFAULT.confidence.weights


def test_unknown_workflows_and_steps_get_the_defaults() -> None:
    assert step_confidence(DEFAULT, "support_triage", "unlisted") == DEFAULT.confidence
    assert step_confidence(DEFAULT, "no_such_workflow", "x") == DEFAULT.confidence
    effective = effective_for(DEFAULT, "no_such_workflow")
    assert effective.review == DEFAULT.review
    assert effective.step("anything") == DEFAULT.confidence
    assert effective_for(DEFAULT, "support_triage").step("draft_reply") == step_confidence(
        DEFAULT, "support_triage", "draft_reply"
    )


def test_a_workflow_budget_override_keeps_other_limits_and_can_lift_one() -> None:
    policy = load_policy_text(
        """\
prices:
  simulated/cheap: {input_per_mtok: 1, output_per_mtok: 1}
  simulated/strong: {input_per_mtok: 1, output_per_mtok: 1}
budgets: {per_run_usd: 0.5, per_user_daily_usd: 5, per_tenant_monthly_usd: 500}
workflows:
  big:
    budgets: {per_run_usd: 3, per_user_daily_usd: null}
"""
    )
    budgets = effective_for(policy, "big").budgets
    assert budgets.per_run_usd == 3
    assert budgets.per_user_daily_usd is None  # explicitly unlimited
    assert budgets.per_tenant_monthly_usd == 500  # inherited, not the model default 1000


def test_overlay_validates_the_merged_result() -> None:
    base = GateThresholds(accept=0.9, review=0.8, escalate=0.7)
    with pytest.raises(ConfigurationError, match=r"^steps\.x: invalid with the defaults"):
        overlay(base, GateThresholds(accept=0.6), where="steps.x")
    assert overlay(base, GateThresholds(escalate=0.1)) == GateThresholds(
        accept=0.9, review=0.8, escalate=0.1
    )


@pytest.mark.parametrize(("name", "found"), [("alice", "alice"), (" Bob ", "bob"), ("dave", None)])
def test_reviewer_by_name(name: str, found: str | None) -> None:
    reviewer = reviewer_by_name(DEFAULT, name)
    assert (reviewer.name if reviewer else None) == found


def test_reviewer_by_slack_id() -> None:
    reviewer = reviewer_by_slack_id(DEFAULT, "U0BOB")
    assert reviewer is not None and reviewer.roles == ["reviewer", "lead"]
    assert reviewer_by_slack_id(DEFAULT, "U0NOBODY") is None
