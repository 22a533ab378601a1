"""Provider health as every worker sees it: one row per worker and model, and the merged view.

Each worker process publishes its breakers' states and call statistics (``publish_health``,
every few seconds); the web app reads them all (``providers_view``) for ``/api/providers`` and
the Providers page. A worker that stopped publishing is not forgotten at once: its rows are
marked stale after ``stale_after_s`` and left out of the combined figures; rows not refreshed
for a day are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, delete, select

__all__ = [
    "CombinedHealth",
    "ModelHealthRow",
    "ProviderHealthRow",
    "ProvidersView",
    "WorkerHealth",
    "providers_view",
    "publish_health",
]

BreakerStateName = Literal["closed", "open", "half_open"]
_FORGET_AFTER = timedelta(days=1)
_SEVERITY: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}


class ModelHealthRow(Protocol):
    """One model's health in a worker's snapshot (``activities.provider_health.ModelHealth``)."""

    @property
    def model(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def state(self) -> BreakerStateName: ...
    @property
    def opened_at(self) -> datetime | None: ...
    @property
    def open_until(self) -> datetime | None: ...
    @property
    def trips(self) -> int: ...
    @property
    def calls(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def error_rate(self) -> float: ...
    @property
    def latency_p50_ms(self) -> float | None: ...
    @property
    def latency_p95_ms(self) -> float | None: ...


class ProviderHealthRow(SQLModel, table=True):
    """One worker's view of one provider/model, as of ``updated_at``."""

    __tablename__ = "provider_health"
    __table_args__ = (UniqueConstraint("worker", "model", name="uq_provider_health_worker_model"),)

    id: int | None = Field(default=None, primary_key=True)
    worker: str = Field(max_length=200)
    model: str = Field(max_length=200)
    provider: str = Field(max_length=100)
    state: str = Field(max_length=16)
    opened_at: datetime | None = None
    open_until: datetime | None = None
    trips: int = 0
    calls: int = 0
    failures: int = 0
    error_rate: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    window_s: float = 0.0
    updated_at: datetime = Field(index=True)


def publish_health(
    session: Session,
    *,
    worker: str,
    taken_at: datetime,
    window_s: float,
    models: Sequence[ModelHealthRow],
) -> None:
    """Writes ``worker``'s snapshot: one row per model, updated in place."""
    existing = {
        row.model: row
        for row in session.exec(select(ProviderHealthRow).where(ProviderHealthRow.worker == worker))
    }
    for health in models:
        row = existing.get(health.model) or ProviderHealthRow(
            worker=worker,
            model=health.model,
            provider=health.provider,
            state="closed",
            updated_at=taken_at,
        )
        row.provider, row.state = health.provider, health.state
        row.opened_at, row.open_until = health.opened_at, health.open_until
        row.trips, row.calls, row.failures = health.trips, health.calls, health.failures
        row.error_rate = health.error_rate
        row.latency_p50_ms, row.latency_p95_ms = health.latency_p50_ms, health.latency_p95_ms
        row.window_s, row.updated_at = window_s, taken_at
        session.add(row)
    session.exec(
        delete(ProviderHealthRow).where(
            col(ProviderHealthRow.updated_at) < taken_at - _FORGET_AFTER
        )
    )


class WorkerHealth(BaseModel):
    """One worker's view of a model."""

    worker: str
    state: BreakerStateName
    stale: bool
    updated_at: datetime
    opened_at: datetime | None
    open_until: datetime | None
    trips: int
    calls: int
    failures: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class CombinedHealth(BaseModel):
    """A model across the workers that published lately (stale rows left out).

    ``state`` is the most severe of them (open > half_open > closed; ``unknown`` when every row
    is stale); calls and failures add up, the error rate is theirs; the latency percentiles are
    the slowest worker's (percentiles of separate samples do not merge exactly).
    """

    state: BreakerStateName | Literal["unknown"]
    workers: int
    open_on: int
    calls: int
    failures: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class ModelView(BaseModel):
    model: str
    provider: str
    combined: CombinedHealth
    workers: list[WorkerHealth]


class ProvidersView(BaseModel):
    """``GET /api/providers``: every provider/model any worker called lately."""

    as_of: datetime
    stale_after_s: float
    models: list[ModelView]


def providers_view(
    session: Session, *, stale_after_s: float, now: datetime | None = None
) -> ProvidersView:
    """Every worker's rows, grouped by model, with the combined figures of the fresh ones."""
    now = now or datetime.now(UTC)
    rows = session.exec(
        select(ProviderHealthRow).order_by(
            col(ProviderHealthRow.model), col(ProviderHealthRow.worker)
        )
    ).all()
    grouped: dict[str, list[ProviderHealthRow]] = {}
    for row in rows:
        grouped.setdefault(row.model, []).append(row)
    models = [
        _model_view(model, group, now, timedelta(seconds=stale_after_s))
        for model, group in grouped.items()
    ]
    return ProvidersView(as_of=now, stale_after_s=stale_after_s, models=models)


def _aware(at: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; every time stored here is UTC.
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _model_view(
    model: str, rows: list[ProviderHealthRow], now: datetime, stale_after: timedelta
) -> ModelView:
    workers = []
    for row in rows:
        updated = _aware(row.updated_at) or now
        workers.append(
            WorkerHealth(
                worker=row.worker,
                state=row.state if row.state in _SEVERITY else "closed",
                stale=now - updated > stale_after,
                updated_at=updated,
                opened_at=_aware(row.opened_at),
                open_until=_aware(row.open_until),
                trips=row.trips,
                calls=row.calls,
                failures=row.failures,
                error_rate=row.error_rate,
                latency_p50_ms=row.latency_p50_ms,
                latency_p95_ms=row.latency_p95_ms,
            )
        )
    fresh = [worker for worker in workers if not worker.stale]
    calls = sum(worker.calls for worker in fresh)
    failures = sum(worker.failures for worker in fresh)
    p50s = [w.latency_p50_ms for w in fresh if w.latency_p50_ms is not None]
    p95s = [w.latency_p95_ms for w in fresh if w.latency_p95_ms is not None]
    combined = CombinedHealth(
        state=max((w.state for w in fresh), key=_SEVERITY.__getitem__) if fresh else "unknown",
        workers=len(fresh),
        open_on=sum(worker.state == "open" for worker in fresh),
        calls=calls,
        failures=failures,
        error_rate=failures / calls if calls else 0.0,
        latency_p50_ms=max(p50s) if p50s else None,
        latency_p95_ms=max(p95s) if p95s else None,
    )
    return ModelView(model=model, provider=rows[0].provider, combined=combined, workers=workers)
