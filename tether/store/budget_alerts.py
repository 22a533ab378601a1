"""Budget alerts sent, one row per scope, period and threshold: the store's unique key is what
makes an alert go out once, however many workers cross the threshold at the same moment.

A scope's key already names its period (``SpendScope``: a run, a tenant's month, a user's
day), so "once per threshold and period" is one primary key. The row is inserted, and its audit
event appended, in one transaction; only the worker whose insert won sends it to Slack and then
marks it notified.

An alert Slack did not take (an error, or its worker died before sending) stays unsent, and
workers resend it: ``claim_unsent`` hands each due alert to one worker for a lease, and a failed
send is ``put_off`` with a growing back-off, until it is sent or too old to matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Field, Session, SQLModel, col, select

from tether.store.audit import append_event
from tether.store.ledger import insert_once
from tether.store.spend import SpendScope, spend_by_scope

__all__ = [
    "BudgetAlert",
    "ScopeBudget",
    "alert_crossings",
    "alerts_for",
    "claim_unsent",
    "mark_notified",
    "put_off",
]

FIRST_SEND_LEASE = timedelta(seconds=60)
"""How long an alert is left to the worker that raised it before others may resend it."""
SEND_LEASE = timedelta(seconds=60)
"""How long a claimed alert is left to the worker that claimed it."""


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
    tenant: str | None = Field(default=None, max_length=200)
    workflow: str | None = Field(default=None, max_length=200)
    """The crossing run's workflow (named in the message)."""
    created_at: datetime = Field(default_factory=_now)
    notified_at: datetime | None = None
    send_after: datetime | None = None
    """Until then the alert is left to the worker sending it (or waits after a failed send)."""
    send_attempts: int = 0
    """Resends claimed so far (the first send by the raising worker not counted)."""


@dataclass(frozen=True)
class ScopeBudget:
    """A budget scope and its limit, as the policy sets it for the step's workflow."""

    kind: str
    scope: SpendScope
    limit_usd: float
    run_id: str
    """The run whose step this check follows (recorded with an alert it raises)."""
    tenant: str
    workflow: str | None = None


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
    now = _now()
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
                tenant=budget.tenant,
                workflow=budget.workflow,
                created_at=now,
                send_after=now + FIRST_SEND_LEASE,
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


def put_off(session: Session, key: str, *, base: timedelta, cap: timedelta) -> None:
    """After a failed send: leave the alert for ``base`` * 2**(resends so far), at most ``cap``."""
    alert = session.get(BudgetAlert, key)
    if alert is None or alert.notified_at is not None:
        return
    alert.send_after = _now() + min(base * 2 ** min(alert.send_attempts, 20), cap)
    session.add(alert)


def claim_unsent(session: Session, *, max_age: timedelta, limit: int = 50) -> list[BudgetAlert]:
    """Claim up to ``limit`` unsent alerts younger than ``max_age`` whose wait is over, for
    ``SEND_LEASE``: a claim is one conditional update, so two workers never claim one alert.
    Returns the claimed alerts, detached from the session."""
    now = _now()
    due = (
        col(BudgetAlert.notified_at).is_(None),
        col(BudgetAlert.created_at) >= now - max_age,
        or_(col(BudgetAlert.send_after).is_(None), col(BudgetAlert.send_after) <= now),
    )
    keys = session.exec(
        select(BudgetAlert.key).where(*due).order_by(col(BudgetAlert.created_at)).limit(limit)
    ).all()
    claimed: list[BudgetAlert] = []
    for key in keys:
        result = session.execute(
            update(BudgetAlert)
            .where(col(BudgetAlert.key) == key, *due)
            .values(send_after=now + SEND_LEASE, send_attempts=BudgetAlert.send_attempts + 1)
        )
        if getattr(result, "rowcount", 0) == 1:
            alert = session.get(BudgetAlert, key, populate_existing=True)
            if alert is not None:
                session.expunge(alert)
                claimed.append(alert)
    return claimed


def alerts_for(session: Session, scope: SpendScope) -> list[BudgetAlert]:
    """The alerts recorded for one scope, lowest threshold first."""
    statement = (
        select(BudgetAlert)
        .where(BudgetAlert.scope == scope.key)
        .order_by(col(BudgetAlert.threshold))
    )
    return list(session.exec(statement).all())
