"""Provider health rows on SQLite and PostgreSQL: a worker's snapshot updates its rows in place,
the merged view groups them by model, and rows a day old are deleted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from activities.provider_health import ModelHealth
from tests.store.conftest import fresh_store_url
from tether.store.engine import session_scope
from tether.store.provider_health import ProviderHealthRow, providers_view, publish_health

MODEL = "openai/gpt-4o-mini"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, "tether_health") as url:
        yield url


def health(state: str, calls: int, failures: int) -> ModelHealth:
    return ModelHealth(
        model=MODEL,
        provider="openai",
        state=state,  # type: ignore[arg-type]
        opened_at=None,
        open_until=None,
        trips=1 if state == "open" else 0,
        breaker_calls=calls,
        breaker_failures=failures,
        calls=calls,
        failures=failures,
        error_rate=failures / calls,
        latency_p50_ms=100.0,
        latency_p95_ms=250.0,
    )


def publish(url: str, worker: str, at: datetime, model: ModelHealth) -> None:
    with session_scope(url) as session:
        publish_health(session, worker=worker, taken_at=at, window_s=300, models=[model])


def test_a_worker_updates_its_rows_in_place_and_old_workers_are_forgotten(store: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    publish(store, "gone", now - timedelta(days=2), health("open", 3, 3))
    publish(store, "w1", now - timedelta(seconds=20), health("closed", 4, 0))
    publish(store, "w1", now - timedelta(seconds=5), health("open", 10, 5))
    publish(store, "w2", now - timedelta(minutes=5), health("closed", 8, 0))
    with session_scope(store) as session:
        rows = session.exec(select(ProviderHealthRow)).all()
        assert sorted(row.worker for row in rows) == ["w1", "w2"]  # "gone" was a day too old
        view = providers_view(session, stale_after_s=60, now=now)
    [model] = view.models
    assert [(w.worker, w.state, w.calls, w.stale) for w in model.workers] == [
        ("w1", "open", 10, False),
        ("w2", "closed", 8, True),
    ]
    assert model.workers[0].updated_at == now - timedelta(seconds=5)
    combined = model.combined
    assert (combined.state, combined.workers, combined.calls, combined.error_rate) == (
        "open",
        1,
        10,
        0.5,
    )
