"""The dashboard's figures, from the store: cost over time, step latency percentiles, review rate
and queue depth, time to decision, and the confidence histogram. Tenant-scoped like the queue.

Rows of the window are read once and bucketed here, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session, col

from tether.store.dashboard_panels import AlertRow, StepCalibration
from tether.store.ledger import LedgerEntry
from tether.store.reviews import ReviewItem
from tether.store.step_events import StepEventRow

__all__ = [
    "Bucket",
    "DashboardFigures",
    "Percentiles",
    "StepLatency",
    "dashboard_figures",
    "percentile",
]

CONFIDENCE_BINS = 20
SETTLED_STATES = ("done", "invalid_output")


class Bucket(BaseModel):
    start: datetime
    value: float


class Percentiles(BaseModel):
    count: int
    p50: float
    p95: float
    p99: float


class StepLatency(BaseModel):
    workflow: str
    step: str
    latency_ms: Percentiles


class DashboardFigures(BaseModel):
    since: datetime
    bucket_s: int
    cost_usd: list[Bucket]
    """Spend per bucket (every provider call in the ledger)."""
    total_cost_usd: float
    step_latency: list[StepLatency]
    review_rate: list[Bucket]
    """Reviews opened per settled step, per bucket (0 to 1)."""
    queue_depth: list[Bucket]
    """Open reviews at each bucket's end."""
    queue_depth_now: int
    time_to_decision_s: Percentiles
    confidence_bins: list[int]
    """Settled steps per confidence band: ``CONFIDENCE_BINS`` equal bands of [0, 1]."""
    budget_alerts: list[AlertRow] = []
    """The newest budget alerts (at most 50, any time), newest first."""
    calibration: list[StepCalibration] = []
    """Per step with reviews or audits: the precision of auto-accept at each threshold."""


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def percentiles(values: Sequence[float]) -> Percentiles:
    return Percentiles(
        count=len(values),
        p50=round(percentile(values, 0.50), 3),
        p95=round(percentile(values, 0.95), 3),
        p99=round(percentile(values, 0.99), 3),
    )


def dashboard_figures(
    session: Session,
    tenants: tuple[str, ...] | None,
    *,
    since: datetime,
    bucket: timedelta,
    now: datetime | None = None,
) -> DashboardFigures:
    """Figures for ``tenants`` (None: every tenant) from ``since`` until ``now``."""
    now = now or datetime.now(UTC)
    starts = _bucket_starts(since, now, bucket)
    costs = _cost_rows(session, tenants, since)
    events = _event_rows(session, tenants, since)
    reviews = _review_rows(session, tenants, since)

    cost_by_bucket: dict[int, float] = defaultdict(float)
    for at, cost in costs:
        cost_by_bucket[_index(at, since, bucket)] += cost
    settled: dict[int, int] = defaultdict(int)
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    bins = [0] * CONFIDENCE_BINS
    for row in events:
        if row.state in SETTLED_STATES:
            settled[_index(row.at, since, bucket)] += 1
            if row.latency_ms is not None:
                latencies[(row.workflow, row.step)].append(row.latency_ms)
            if row.confidence_score is not None:
                bins[min(CONFIDENCE_BINS - 1, int(row.confidence_score * CONFIDENCE_BINS))] += 1
    opened: dict[int, int] = defaultdict(int)
    waits: list[float] = []
    for item in reviews:
        opened[_index(item.opened_at, since, bucket)] += 1
        if item.decided_at is not None:
            waits.append((_aware(item.decided_at) - _aware(item.opened_at)).total_seconds())
    return DashboardFigures(
        since=since,
        bucket_s=int(bucket.total_seconds()),
        cost_usd=[Bucket(start=s, value=round(cost_by_bucket[i], 8)) for i, s in enumerate(starts)],
        total_cost_usd=round(sum(cost for _, cost in costs), 8),
        step_latency=[
            StepLatency(workflow=workflow, step=step, latency_ms=percentiles(values))
            for (workflow, step), values in sorted(latencies.items())
        ],
        review_rate=[
            Bucket(start=s, value=round(min(1.0, opened[i] / settled[i]), 4) if settled[i] else 0)
            for i, s in enumerate(starts)
        ],
        queue_depth=[
            Bucket(start=s, value=_open_at(reviews, min(s + bucket, now))) for s in starts
        ],
        queue_depth_now=int(_open_at(reviews, now)),
        time_to_decision_s=percentiles(waits),
        confidence_bins=bins,
    )


def _bucket_starts(since: datetime, now: datetime, bucket: timedelta) -> list[datetime]:
    count = max(1, math.ceil((now - since) / bucket))
    return [since + bucket * i for i in range(count)]


def _index(at: datetime, since: datetime, bucket: timedelta) -> int:
    return max(0, int((_aware(at) - since) / bucket))


def _open_at(reviews: Sequence[ReviewItem], at: datetime) -> float:
    """Reviews opened by ``at`` and not closed by then."""
    count = 0
    for item in reviews:
        closed = _closed_at(item)
        if _aware(item.opened_at) <= at and (closed is None or closed > at):
            count += 1
    return float(count)


def _closed_at(item: ReviewItem) -> datetime | None:
    if item.decided_at is not None:
        return _aware(item.decided_at)
    if item.status != "pending":
        return _aware(item.updated_at)
    return None


def _cost_rows(
    session: Session, tenants: tuple[str, ...] | None, since: datetime
) -> list[tuple[datetime, float]]:
    query = select(col(LedgerEntry.created_at), col(LedgerEntry.cost_usd)).where(
        col(LedgerEntry.created_at) >= since
    )
    if tenants is not None:
        query = query.where(col(LedgerEntry.tenant).in_(tenants))
    return [(at, float(cost)) for at, cost in session.execute(query).all()]


def _event_rows(
    session: Session, tenants: tuple[str, ...] | None, since: datetime
) -> list[StepEventRow]:
    query = select(StepEventRow).where(
        col(StepEventRow.at) >= since, col(StepEventRow.state).in_(SETTLED_STATES)
    )
    if tenants is not None:
        query = query.where(col(StepEventRow.tenant).in_(tenants))
    return list(session.execute(query).scalars())


def _review_rows(
    session: Session, tenants: tuple[str, ...] | None, since: datetime
) -> list[ReviewItem]:
    # Reviews still open from before the window count towards its queue depth.
    query = select(ReviewItem).where(
        (col(ReviewItem.opened_at) >= since)
        | (col(ReviewItem.updated_at) >= since)
        | (col(ReviewItem.status) == "pending")
    )
    if tenants is not None:
        query = query.where(col(ReviewItem.tenant).in_(tenants))
    return list(session.execute(query).scalars())


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
