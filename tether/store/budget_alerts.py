"""Budget alerts sent, one row per scope, period and threshold: the store's unique key is what
makes an alert go out once, however many workers cross the threshold at the same moment.

A scope's key already names its period (``SpendScope``: a run, a tenant's month, a user's
day), so "once per threshold and period" is one primary key. The row is inserted, and its audit
event appended, in one transaction; only the worker whose insert won sends it to Slack and then
marks it notified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Field, Session, SQLModel, col, select

from tether.store.audit import append_event
from tether.store.ledger import insert_once
from tether.store.spend import SpendScope, spend_by_scope

__all__ = [
    "BudgetAlert",
    "ScopeBudget",
    "alert_crossings",
    "alerts_for",
    "mark_notified",
]


def _now() -> datetime:
    return datetime.now(UTC)


class BudgetAlert(SQLModel, table=True):
    """One threshold of one budget scope crossed in one period."""

    __tablename__ = "budget_alerts"

    key: str = Field(primary_key=True, max_length=700)
    """``<scope key>@<threshold>``."""
    scope_kind: str = Field(max_length=40)
    """``run``, ``user_daily`` or ``tenant_monthly`` (the budget's name)."""
    scope: str = Field(max_length=600, index=True)
    threshold: float
    spent_usd: float
    limit_usd: float
    run_id: str = Field(max_length=200)
    """The run whose step crossed it."""
    created_at: datetime = Field(default_factory=_now)
    notified_at: datetime | None = None


@dataclass(frozen=True)
class ScopeBudget:
    """A budget scope and its limit, as the policy sets it for the step's workflow."""

    kind: str
    scope: SpendScope
    limit_usd: float
    run_id: str
    """The run whose step this check follows (recorded with an alert it raises)."""
    tenant: str


def alert_crossings(
    session: Session,
    budgets: Sequence[ScopeBudget],
    thresholds: Sequence[float],
    *,
    skip: frozenset[str] = frozenset(),
) -> list[BudgetAlert]:
    """Record every threshold the scopes' spend has now crossed and no alert has yet been
    recorded for; return the alerts this call recorded (each also in the audit log).

    Args:
        skip: Alert keys already known to exist (a process-local cache): not tried again.
    """
    spends = spend_by_scope(session, [budget.scope for budget in budgets])
    fired: list[BudgetAlert] = []
    for budget, (spent, _) in zip(budgets, spends, strict=True):
        for share in sorted(thresholds):
            key = f"{budget.scope.key}@{share:g}"
            if key in skip or spent + 1e-9 < share * budget.limit_usd:
                continue
            alert = BudgetAlert(
                key=key,
                scope_kind=budget.kind,
                scope=budget.scope.key,
                threshold=share,
                spent_usd=round(spent, 8),
                limit_usd=budget.limit_usd,
                run_id=budget.run_id,
            )
            if not insert_once(session, alert):
                continue
            append_event(
                session,
                key=f"budget_alert:{key}",
                kind="budget_alert",
                actor="tether",
                run_id=budget.run_id,
                detail={
                    "scope": budget.kind,
                    "tenant": budget.tenant,
                    "threshold": share,
                    "spent_usd": alert.spent_usd,
                    "limit_usd": budget.limit_usd,
                },
            )
            fired.append(alert)
    return fired


def mark_notified(session: Session, key: str) -> None:
    alert = session.get(BudgetAlert, key)
    if alert is not None and alert.notified_at is None:
        alert.notified_at = _now()
        session.add(alert)


def alerts_for(session: Session, scope: SpendScope) -> list[BudgetAlert]:
    """The alerts recorded for one scope, lowest threshold first."""
    statement = (
        select(BudgetAlert)
        .where(BudgetAlert.scope == scope.key)
        .order_by(col(BudgetAlert.threshold))
    )
    return list(session.exec(statement).all())
