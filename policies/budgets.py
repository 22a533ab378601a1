"""Cost checkpoints: would this call's estimate push a run, a user or a tenant over budget?"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from policies.models import BudgetPolicy, OverBudgetAction
from policies.values import BudgetCheck, BudgetScopeStatus

__all__ = [
    "SpendSoFar",
    "check_budget",
    "format_usd",
]

_EPSILON_USD = 1e-9
"""Float sums of cents are not exact; landing exactly on a limit must not count as exceeding it."""


class SpendSoFar(BaseModel):
    """What a budget scope has used: settled spend plus reservations of calls still in flight."""

    model_config = ConfigDict(frozen=True)

    spent_usd: float = Field(default=0.0, ge=0)
    reserved_usd: float = Field(default=0.0, ge=0)


def check_budget(
    policy: BudgetPolicy,
    estimate_usd: float,
    run: SpendSoFar,
    user_daily: SpendSoFar | None,
    tenant_monthly: SpendSoFar,
    extra_run_budget_usd: float = 0.0,
    downgrade_model: str | None = None,
) -> BudgetCheck:
    """Decides whether a call estimated at ``estimate_usd`` fits every configured budget.

    A scope is exceeded when spent + reserved + estimate > limit (the run's limit is raised by
    ``extra_run_budget_usd``, spend a reviewer approved). A scope whose limit is None is
    unlimited; ``user_daily`` is None for runs without an end user.

    Args:
        policy: The effective budget policy of the workflow.
        estimate_usd: Worst-case cost of the next call.
        run: The run's spend so far.
        user_daily: The end user's spend today (UTC), or None when the run has no end user.
        tenant_monthly: The tenant's spend this month (UTC).
        extra_run_budget_usd: Spend beyond the run budget a reviewer already approved.
        downgrade_model: The cheaper model the ``downgrade`` action would switch to, if any.

    Returns:
        The check. When not allowed, ``action`` is the policy's ``on_exceed``, except that
        ``downgrade`` without a ``downgrade_model`` falls back to ``approve_spend``. The caller
        re-checks with the cheaper model's estimate after a downgrade.
    """
    if estimate_usd < 0:
        raise ValueError(f"estimate_usd must be >= 0, got {estimate_usd}")
    if extra_run_budget_usd < 0:
        raise ValueError(f"extra_run_budget_usd must be >= 0, got {extra_run_budget_usd}")
    # Each scope with the approved extra already in its limit, kept apart for the message.
    scopes: list[tuple[BudgetScopeStatus, float]] = []
    if policy.per_run_usd is not None:
        limit = policy.per_run_usd + extra_run_budget_usd
        scopes.append((_status("run", limit, run), extra_run_budget_usd))
    if policy.per_user_daily_usd is not None and user_daily is not None:
        scopes.append((_status("user_daily", policy.per_user_daily_usd, user_daily), 0.0))
    if policy.per_tenant_monthly_usd is not None:
        limit = policy.per_tenant_monthly_usd
        scopes.append((_status("tenant_monthly", limit, tenant_monthly), 0.0))

    exceeded = [
        (status, extra)
        for status, extra in scopes
        if status.spent_usd + status.reserved_usd + estimate_usd > status.limit_usd + _EPSILON_USD
    ]
    all_statuses = [status for status, _ in scopes]
    if not exceeded:
        return BudgetCheck(allowed=True, estimate_usd=estimate_usd, scopes=all_statuses)

    action: OverBudgetAction = policy.on_exceed
    if action == "downgrade" and downgrade_model is None:
        action = "approve_spend"
    return BudgetCheck(
        allowed=False,
        estimate_usd=estimate_usd,
        action=action,
        exceeded=[status for status, _ in exceeded],
        scopes=all_statuses,
        downgrade_model=downgrade_model if action == "downgrade" else None,
        message="; ".join(
            _exceeded_message(status, extra, estimate_usd) for status, extra in exceeded
        ),
    )


def format_usd(amount: float) -> str:
    """Formats dollars for people: ``$0.50``; sub-cent amounts keep their significant digits."""
    if amount != 0 and abs(amount) < 0.01:
        decimals = min(1 - math.floor(math.log10(abs(amount))), 8)
        return f"${amount:.{decimals}f}"
    return f"${amount:,.2f}"


_SCOPE_LABELS = {"run": "run", "user_daily": "daily user", "tenant_monthly": "monthly tenant"}


def _status(scope: str, limit_usd: float, spend: SpendSoFar) -> BudgetScopeStatus:
    return BudgetScopeStatus(
        scope=scope, limit_usd=limit_usd, spent_usd=spend.spent_usd, reserved_usd=spend.reserved_usd
    )


def _exceeded_message(status: BudgetScopeStatus, extra_usd: float, estimate_usd: float) -> str:
    limit = format_usd(status.limit_usd - extra_usd)
    if extra_usd > 0:
        limit += f" (+ {format_usd(extra_usd)} approved)"
    parts = [f"spent {format_usd(status.spent_usd)}"]
    if status.reserved_usd > 0:
        parts.append(f"reserved {format_usd(status.reserved_usd)}")
    parts.append(f"estimate {format_usd(estimate_usd)}")
    label = _SCOPE_LABELS.get(status.scope, status.scope)
    return f"{label} budget {limit} would be exceeded: {' + '.join(parts)}"
