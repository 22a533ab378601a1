"""Budget alerts sent, one row per scope, period and threshold: the store's unique key is what
makes an alert go out once, however many workers cross the threshold at the same moment.

A scope's key already names its period (``SpendScope``: a run, a tenant's month, a user's
day), so "once per threshold and period" is one primary key. The row is inserted, and its audit
event appended, in one transaction; only the worker whose insert won sends it to Slack and then
marks it notified.

Sending is held alert by alert: right before posting one, a worker ``hold_alert``s it for
``SEND_LEASE`` under a token of its own (one conditional update, so two workers never hold one
alert at once); the worker that raised it holds it from the insert. An alert Slack did not take
(an error, or its worker died while holding it) is ``put_off`` with a growing back-off and
resent by whichever worker holds it next (``due_for_resend``), until sent or too old to matter.
An alert raised where Slack is off is never held, so never sent later.
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
    "due_for_resend",
    "hold_alert",
    "mark_notified",
    "put_off",
]

SEND_LEASE = timedelta(minutes=5)
"""How long a held alert is left to the worker holding it (far longer than one post takes)."""


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
    send_after: datetime | None = Field(default=None, index=True)
    """While unsent: until then the alert is left to the worker holding it, or waits after a
    failed post. None: nobody is to send it (sent, or raised where Slack is off)."""
    send_token: str | None = Field(default=None, max_length=64)
    """The token of the worker holding it (or that held it last)."""
    send_attempts: int = 0
    """Posts Slack did not take."""


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
    send_token: str | None = None,
) -> list[BudgetAlert]:
    """Record every threshold the scopes' spend has now crossed and no alert has yet been
    recorded for; return the alerts this call recorded (each also in the audit log).

    Args:
        skip: Alert keys already known to exist (a process-local cache): not tried again.
        send_token: The caller will post them: each is held under this token (None: Slack is
            off, nobody will).
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
                send_after=now + SEND_LEASE if send_token else None,
                send_token=send_token,
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


def hold_alert(session: Session, key: str, token: str) -> BudgetAlert | None:
    """Hold one unsent alert for ``SEND_LEASE`` right before posting it, when ``token`` holds it
    already or its wait is over; return it (detached), or None when another worker holds it or
    it was sent. One conditional update: two workers never hold one alert at once."""
    now = _now()
    result = session.execute(
        update(BudgetAlert)
        .where(
            col(BudgetAlert.key) == key,
            col(BudgetAlert.notified_at).is_(None),
            col(BudgetAlert.send_after).is_not(None),
            or_(col(BudgetAlert.send_token) == token, col(BudgetAlert.send_after) <= now),
        )
        .values(send_after=now + SEND_LEASE, send_token=token)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    alert = session.get(BudgetAlert, key, populate_existing=True)
    if alert is not None:
        session.expunge(alert)
    return alert


def due_for_resend(session: Session, *, max_age: timedelta, limit: int = 50) -> list[str]:
    """Keys of unsent alerts younger than ``max_age`` whose wait is over, oldest first."""
    now = _now()
    statement = (
        select(BudgetAlert.key)
        .where(
            col(BudgetAlert.notified_at).is_(None),
            col(BudgetAlert.send_after).is_not(None),
            col(BudgetAlert.send_after) <= now,
            col(BudgetAlert.created_at) >= now - max_age,
        )
        .order_by(col(BudgetAlert.created_at), col(BudgetAlert.key))
        .limit(limit)
    )
    return list(session.exec(statement).all())


def mark_notified(session: Session, key: str, token: str | None = None) -> None:
    """Slack took the alert (posted under ``token``, when held)."""
    alert = session.get(BudgetAlert, key)
    if alert is None or alert.notified_at is not None:
        return
    if token is not None and alert.send_token != token:
        return  # another worker took it over (this post outlasted the lease): it marks it
    alert.notified_at, alert.send_after = _now(), None
    session.add(alert)


def put_off(session: Session, key: str, token: str, *, base: timedelta, cap: timedelta) -> None:
    """Slack did not take the alert: resend it after ``base`` * 2**(failed posts before this
    one), at most ``cap`` (while ``token`` still holds it)."""
    alert = session.get(BudgetAlert, key)
    if alert is None or alert.notified_at is not None or alert.send_token != token:
        return
    alert.send_after = _now() + min(base * 2 ** min(alert.send_attempts, 20), cap)
    alert.send_attempts += 1
    session.add(alert)


def alerts_for(session: Session, scope: SpendScope) -> list[BudgetAlert]:
    """The alerts recorded for one scope, lowest threshold first."""
    statement = (
        select(BudgetAlert)
        .where(BudgetAlert.scope == scope.key)
        .order_by(col(BudgetAlert.threshold))
    )
    return list(session.exec(statement).all())
