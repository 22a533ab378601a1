"""The dashboard's tables beside its charts: recent budget alerts and the calibration of
auto-accept per step. Tenant-scoped like the rest of the dashboard, every read bounded.

A budget alert row names no tenant of its own: a tenant's or user's scope key holds it, and a
run's scope is the tenant of the run (the run registry). An alert is shown to a login only when
that tenant is one of theirs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from policies.eval_stats import calibrate
from tether.store.budget_alerts import BudgetAlert
from tether.store.examples import AUDIT_SAMPLE, LABELLED_DECISIONS, LabelledExample
from tether.store.run_ids import RunIdClaim

__all__ = [
    "AlertRow",
    "StepCalibration",
    "ThresholdPrecisionRow",
    "recent_budget_alerts",
    "step_calibrations",
]

ALERT_LIMIT = 50
STEP_LIMIT = 20
"""At most this many steps (those with the most recent labels) get a calibration."""
EXAMPLES_PER_STEP = 5000
"""A step's calibration reads at most its newest this many labelled outputs."""

_TENANT_SCOPES = {"tenant_month": "tenant_monthly", "user_day": "user_daily"}


class AlertRow(BaseModel):
    scope: str
    """``run``, ``user_daily`` or ``tenant_monthly``."""
    tenant: str | None
    end_user: str | None = None
    run_id: str
    period: str
    """The run id, the day (``YYYY-MM-DD``) or the month (``YYYY-MM``) the budget covers."""
    threshold: float
    """The share of the budget crossed (0.8 = 80 %)."""
    spent_usd: float
    limit_usd: float
    at: datetime
    notified: bool
    """Sent to Slack (False when Slack is off or the post failed)."""


def recent_budget_alerts(
    session: Session, tenants: tuple[str, ...] | None, *, limit: int = ALERT_LIMIT
) -> list[AlertRow]:
    """The newest ``limit`` alerts of ``tenants`` (None: every tenant), newest first."""
    query = (
        select(BudgetAlert, col(RunIdClaim.tenant))
        .outerjoin(RunIdClaim, col(RunIdClaim.run_id) == col(BudgetAlert.run_id))
        .order_by(col(BudgetAlert.created_at).desc(), col(BudgetAlert.key))
        .limit(limit)
    )
    if tenants is not None:
        if not tenants:
            return []
        prefixes = [
            json.dumps([kind, tenant], separators=(",", ":"), ensure_ascii=False)[:-1] + ","
            for kind in _TENANT_SCOPES
            for tenant in tenants
        ]
        query = query.where(
            or_(
                col(RunIdClaim.tenant).in_(tenants),
                *(col(BudgetAlert.scope).startswith(p, autoescape=True) for p in prefixes),
            )
        )
    rows = [_alert_row(alert, run_tenant) for alert, run_tenant in session.execute(query).all()]
    return [row for row in rows if tenants is None or row.tenant in tenants]


def _alert_row(alert: BudgetAlert, run_tenant: str | None) -> AlertRow:
    parts = _scope_parts(alert.scope)
    tenant, end_user, period = run_tenant, None, alert.run_id
    if parts and parts[0] == "tenant_month" and len(parts) == 3:
        tenant, period = parts[1], parts[2]
    elif parts and parts[0] == "user_day" and len(parts) == 4:
        tenant, end_user, period = parts[1], parts[2], parts[3]
    return AlertRow(
        scope=alert.scope_kind,
        tenant=tenant,
        end_user=end_user,
        run_id=alert.run_id,
        period=period,
        threshold=alert.threshold,
        spent_usd=alert.spent_usd,
        limit_usd=alert.limit_usd,
        at=alert.created_at,
        notified=alert.notified_at is not None,
    )


def _scope_parts(key: str) -> list[str]:
    try:
        parts = json.loads(key)
    except ValueError:
        return []
    return [str(p) for p in parts] if isinstance(parts, list) else []


class ThresholdPrecisionRow(BaseModel):
    threshold: float
    accepted: int
    correct: int
    precision: float | None


class StepCalibration(BaseModel):
    workflow: str
    step: str
    labelled: int
    """Reviewed and audited outputs with a confidence score (the newest, at most
    ``EXAMPLES_PER_STEP``)."""
    accept_threshold: float
    """The gate's current accept threshold for the step."""
    target_precision: float
    suggested_threshold: float | None
    """The lowest threshold whose precision meets the target (None: none does yet)."""
    thresholds: list[ThresholdPrecisionRow]


StepSettings = Callable[[str, str], tuple[float, float, float]]
"""(workflow, step) -> (accept threshold, target precision, audit sample rate)."""


def step_calibrations(
    session: Session,
    tenants: tuple[str, ...] | None,
    settings: StepSettings,
    *,
    min_support: int = 5,
) -> list[StepCalibration]:
    """The precision of auto-accept at each threshold for every step with labelled outputs of
    ``tenants`` (at most ``STEP_LIMIT`` steps), by workflow and step."""
    labelled = (
        col(LabelledExample.confidence_score).is_not(None),
        col(LabelledExample.decision).in_(LABELLED_DECISIONS),
    )
    of_tenants = () if tenants is None else (col(LabelledExample.tenant).in_(tenants),)
    if tenants is not None and not tenants:
        return []
    steps_query = (
        select(col(LabelledExample.workflow), col(LabelledExample.step))
        .where(*labelled, *of_tenants)
        .group_by(col(LabelledExample.workflow), col(LabelledExample.step))
        .order_by(func.max(col(LabelledExample.decided_at)).desc())
        .limit(STEP_LIMIT)
    )
    out = []
    for workflow, step in sorted(session.execute(steps_query).all()):
        accept, target, audit_rate = settings(workflow, step)
        rows_query = (
            select(
                col(LabelledExample.confidence_score),
                col(LabelledExample.decision),
                col(LabelledExample.asked_because),
            )
            .where(
                col(LabelledExample.workflow) == workflow,
                col(LabelledExample.step) == step,
                *labelled,
                *of_tenants,
            )
            .order_by(col(LabelledExample.decided_at).desc(), col(LabelledExample.id).desc())
            .limit(EXAMPLES_PER_STEP)
        )
        rows = [(float(s), d, why) for s, d, why in session.execute(rows_query).all()]
        audit_weight = 1 / audit_rate if audit_rate else 1.0
        report = calibrate(
            [(score, decision == "approve") for score, decision, _ in rows],
            weights=[audit_weight if why == AUDIT_SAMPLE else 1.0 for _, _, why in rows],
            target_precision=target,
            min_support=min_support,
        )
        out.append(
            StepCalibration(
                workflow=workflow,
                step=step,
                labelled=report.labelled,
                accept_threshold=accept,
                target_precision=report.target_precision,
                suggested_threshold=report.suggested_threshold,
                thresholds=[
                    ThresholdPrecisionRow(
                        threshold=r.threshold,
                        accepted=r.accepted,
                        correct=r.correct,
                        precision=None if r.precision is None else round(r.precision, 4),
                    )
                    for r in report.thresholds
                ],
            )
        )
    return out
