"""Cost checkpoints: each scope, each over-budget action, and the budget periods."""

from __future__ import annotations

import pytest

from policies.budgets import (
    SpendSoFar,
    check_budget,
    format_usd,
)
from policies.models import BudgetPolicy, OverBudgetAction

POLICY = BudgetPolicy(
    per_run_usd=0.50, per_user_daily_usd=5.0, per_tenant_monthly_usd=500.0, on_exceed="stop"
)
NOTHING = SpendSoFar()


def test_within_every_budget_is_allowed() -> None:
    check = check_budget(
        POLICY,
        0.03,
        run=SpendSoFar(spent_usd=0.40, reserved_usd=0.05),
        user_daily=SpendSoFar(spent_usd=4.0),
        tenant_monthly=SpendSoFar(spent_usd=100.0),
    )
    assert check.allowed
    assert check.action is None
    assert check.exceeded == []
    assert [s.scope for s in check.scopes] == ["run", "user_daily", "tenant_monthly"]


@pytest.mark.parametrize(
    ("run", "user", "tenant", "scope", "message"),
    [
        (
            SpendSoFar(spent_usd=0.48),
            NOTHING,
            NOTHING,
            "run",
            "run budget $0.50 would be exceeded: spent $0.48 + estimate $0.03",
        ),
        (
            NOTHING,
            SpendSoFar(spent_usd=4.90, reserved_usd=0.08),
            NOTHING,
            "user_daily",
            "daily user budget $5.00 would be exceeded: "
            "spent $4.90 + reserved $0.08 + estimate $0.03",
        ),
        (
            NOTHING,
            NOTHING,
            SpendSoFar(spent_usd=499.99),
            "tenant_monthly",
            "monthly tenant budget $500.00 would be exceeded: spent $499.99 + estimate $0.03",
        ),
    ],
)
def test_each_scope_is_checked_and_named(
    run: SpendSoFar, user: SpendSoFar, tenant: SpendSoFar, scope: str, message: str
) -> None:
    check = check_budget(POLICY, 0.03, run=run, user_daily=user, tenant_monthly=tenant)
    assert not check.allowed
    assert check.action == "stop"
    assert [s.scope for s in check.exceeded] == [scope]
    assert check.message == message


def test_landing_exactly_on_the_limit_is_allowed() -> None:
    check = check_budget(
        POLICY, 0.02, run=SpendSoFar(spent_usd=0.48), user_daily=None, tenant_monthly=NOTHING
    )
    assert check.allowed


def test_several_exceeded_scopes_are_all_reported() -> None:
    check = check_budget(
        POLICY,
        1.0,
        run=NOTHING,
        user_daily=SpendSoFar(spent_usd=4.5),
        tenant_monthly=NOTHING,
    )
    assert [s.scope for s in check.exceeded] == ["run", "user_daily"]
    assert check.message.count("would be exceeded") == 2


def test_unlimited_scopes_and_anonymous_runs_are_not_checked() -> None:
    unlimited = BudgetPolicy(per_run_usd=None, per_user_daily_usd=None, per_tenant_monthly_usd=None)
    check = check_budget(unlimited, 1e6, run=NOTHING, user_daily=NOTHING, tenant_monthly=NOTHING)
    assert check.allowed
    assert check.scopes == []
    anonymous = check_budget(POLICY, 0.01, run=NOTHING, user_daily=None, tenant_monthly=NOTHING)
    assert [s.scope for s in anonymous.scopes] == ["run", "tenant_monthly"]


def test_approved_extra_spend_raises_the_run_limit_only() -> None:
    run = SpendSoFar(spent_usd=0.48)
    check = check_budget(
        POLICY, 0.03, run=run, user_daily=None, tenant_monthly=NOTHING, extra_run_budget_usd=0.25
    )
    assert check.allowed
    assert check.scopes[0].limit_usd == pytest.approx(0.75)
    over = check_budget(
        POLICY, 0.30, run=run, user_daily=None, tenant_monthly=NOTHING, extra_run_budget_usd=0.25
    )
    assert over.message == (
        "run budget $0.50 (+ $0.25 approved) would be exceeded: spent $0.48 + estimate $0.30"
    )


@pytest.mark.parametrize(
    ("on_exceed", "downgrade_model", "action", "model_in_check"),
    [
        ("approve_spend", None, "approve_spend", None),
        ("approve_spend", "openai/gpt-4o-mini", "approve_spend", None),
        ("stop", "openai/gpt-4o-mini", "stop", None),
        ("downgrade", "openai/gpt-4o-mini", "downgrade", "openai/gpt-4o-mini"),
        ("downgrade", None, "approve_spend", None),  # nothing cheaper: ask a human instead
    ],
)
def test_over_budget_action_follows_the_policy(
    on_exceed: OverBudgetAction,
    downgrade_model: str | None,
    action: OverBudgetAction,
    model_in_check: str | None,
) -> None:
    policy = POLICY.model_copy(update={"on_exceed": on_exceed})
    check = check_budget(
        policy,
        0.10,
        run=SpendSoFar(spent_usd=0.45),
        user_daily=None,
        tenant_monthly=NOTHING,
        downgrade_model=downgrade_model,
    )
    assert not check.allowed
    assert check.action == action
    assert check.downgrade_model == model_in_check


def test_sub_cent_amounts_stay_readable() -> None:
    assert format_usd(0.00045) == "$0.00045"
    assert format_usd(0.5) == "$0.50"
    assert format_usd(1234.5) == "$1,234.50"
    check = check_budget(
        POLICY, 0.0012, run=SpendSoFar(spent_usd=0.4995), user_daily=None, tenant_monthly=NOTHING
    )
    assert check.message == "run budget $0.50 would be exceeded: spent $0.50 + estimate $0.0012"


def test_negative_estimate_is_a_bug() -> None:
    with pytest.raises(ValueError, match="estimate_usd"):
        check_budget(POLICY, -0.01, run=NOTHING, user_daily=None, tenant_monthly=NOTHING)
