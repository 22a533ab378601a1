"""Step events, the runs list and the dashboard's figures on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store.conftest import fresh_store_url
from tether.store.engine import session_scope
from tether.store.ledger import LedgerEntry
from tether.store.reviews import ReviewItem
from tether.store.run_figures import dashboard_figures, percentile
from tether.store.run_ids import RunIdClaim, claim_run_id
from tether.store.run_list import (
    RunQuery,
    count_runs,
    list_runs,
    record_run_end,
    unended_runs,
)
from tether.store.step_events import StepEventRow, events_after, record_step_event

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, prefix="tether_events") as url:
        yield url


def event(run_id: str, key: str, state: str = "done", **fields: object) -> StepEventRow:
    values: dict[str, object] = {
        "key": key,
        "run_id": run_id,
        "seq": 0,
        "workflow": "support_triage",
        "tenant": "acme",
        "step": "classify",
        "state": state,
    }
    return StepEventRow.model_validate(values | fields)


def test_events_count_from_one_per_run_and_a_repeated_key_is_recorded_once(db_url: str) -> None:
    with session_scope(db_url) as session:
        assert record_step_event(session, event("r1", "a", "running"))
        assert record_step_event(session, event("r2", "b", "running"))
        assert record_step_event(session, event("r1", "c", "done", guards=[{"guard": "pii"}]))
        assert not record_step_event(session, event("r1", "a", "running"))  # a retried activity
    with session_scope(db_url) as session:
        first = events_after(session, "r1")
        later = events_after(session, "r1", after_seq=1)
        other = events_after(session, "r2")
    assert [(e.seq, e.state) for e in first] == [(1, "running"), (2, "done")]
    assert first[1].guards == [{"guard": "pii"}]
    assert [e.seq for e in later] == [2]
    assert [e.seq for e in other] == [1]
    assert first[0].at.tzinfo is not None


def test_concurrent_writers_of_one_run_get_distinct_seqs_with_none_lost(db_url: str) -> None:
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(10):
                with session_scope(db_url) as session:
                    record_step_event(session, event("busy", f"w{worker}-{n}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with session_scope(db_url) as session:
        seqs = [e.seq for e in events_after(session, "busy")]
    assert seqs == list(range(1, 41))


def test_runs_list_joins_cost_steps_state_and_deciders(db_url: str) -> None:
    with session_scope(db_url) as session:
        claim_run_id(session, "run-a", "support_triage", "acme")
        claim_run_id(session, "run-b", "document_summary", "globex")
    with session_scope(db_url) as session:
        record_step_event(session, event("run-a", "1", "done"))
        record_step_event(session, event("run-a", "2", "awaiting_review", step="extract"))
        record_step_event(session, event("run-a", "3", "approved", step="extract", actor="bob"))
        record_step_event(session, event("run-a", "4", "rejected", step="draft", actor="alice"))
        session.add(_call("run-a", "k1", 0.25))
        session.add(_call("run-a", "k2", 0.5))
        record_run_end(session, "run-a", "stopped", T0)
    with session_scope(db_url) as session:
        rows = list_runs(session, RunQuery())
        acme = list_runs(session, RunQuery(tenants=("acme",)))
        summaries = list_runs(session, RunQuery(workflow="document_summary"))
    by_id = {row.run_id: row for row in rows}
    a = by_id["run-a"]
    assert (a.cost_usd, a.steps, a.last_state, a.last_step) == (0.75, 3, "rejected", "draft")
    assert a.deciders == ["bob", "alice"]
    assert (a.ended_state, a.ended_at) == ("stopped", T0)
    assert by_id["run-b"].steps == 0 and by_id["run-b"].cost_usd == 0
    assert [row.run_id for row in acme] == ["run-a"]
    assert [row.run_id for row in summaries] == ["run-b"]


def test_dashboard_figures_on_constructed_data(db_url: str) -> None:
    now = T0 + timedelta(hours=3)
    with session_scope(db_url) as session:
        for n, latency in enumerate([100.0, 200.0, 300.0, 400.0]):
            record_step_event(
                session,
                event(
                    f"run-{n}",
                    f"s{n}",
                    latency_ms=latency,
                    confidence_score=0.05 + n * 0.3,
                    at=T0 + timedelta(minutes=30 + 60 * (n % 2)),
                ),
            )
        record_step_event(session, event("other", "x", tenant="globex", latency_ms=9999.0))
        session.add(_call("run-0", "c1", 0.5, at=T0 + timedelta(minutes=10)))
        session.add(_call("run-1", "c2", 0.25, at=T0 + timedelta(minutes=70)))
        session.add(_call("run-2", "c3", 1.0, tenant="globex"))
        # One review decided after 120 s, one still open since the second hour.
        session.add(_review("rv1", T0 + timedelta(minutes=20), T0 + timedelta(minutes=22)))
        session.add(_review("rv2", T0 + timedelta(minutes=80), None))
    with session_scope(db_url) as session:
        figures = dashboard_figures(
            session, ("acme",), since=T0, bucket=timedelta(hours=1), now=now
        )
    assert [b.value for b in figures.cost_usd] == [0.5, 0.25, 0.0]
    assert figures.total_cost_usd == 0.75
    (latency,) = figures.step_latency
    assert (latency.latency_ms.count, latency.latency_ms.p50, latency.latency_ms.p99) == (
        4,
        200.0,
        400.0,
    )
    # Scores 0.05, 0.35, 0.65, 0.95 in twenty bands of 0.05; globex's step is not counted.
    assert [i for i, n in enumerate(figures.confidence_bins) if n] == [1, 7, 13, 19]
    assert sum(figures.confidence_bins) == 4
    assert [b.value for b in figures.review_rate] == [0.5, 0.5, 0.0]
    assert [b.value for b in figures.queue_depth] == [0.0, 1.0, 1.0]
    assert figures.queue_depth_now == 1
    assert figures.time_to_decision_s.count == 1 and figures.time_to_decision_s.p50 == 120.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert percentile([], 0.5) == 0.0


def _call(
    run_id: str, key: str, cost: float, *, tenant: str = "acme", at: datetime | None = None
) -> LedgerEntry:
    return LedgerEntry(
        key=key,
        run_id=run_id,
        workflow="support_triage",
        step="classify",
        tenant=tenant,
        call="main",
        activity_attempt=1,
        model="simulated/cheap",
        provider="simulated",
        cost_usd=cost,
        outcome="ok",
        created_at=at or T0 + timedelta(minutes=5),
    )


def _review(review_id: str, opened: datetime, decided: datetime | None) -> ReviewItem:
    return ReviewItem(
        review_id=review_id,
        run_id=f"run-{review_id}",
        workflow="support_triage",
        step="classify",
        tenant="acme",
        reason="low_confidence",
        summary="needs review",
        output_digest="sha256:" + "0" * 64,
        allowed_roles=["reviewer"],
        opened_at=opened,
        due_at=opened + timedelta(days=1),
        expires_at=opened + timedelta(days=7),
        status="approved" if decided else "pending",
        decided_at=decided,
        updated_at=decided or opened,
    )


def test_runs_are_paged_counted_and_filtered_by_state_in_the_store(db_url: str) -> None:
    # 130 runs of two tenants: 60 recorded as completed, 40 waiting for a reviewer, 30 running.
    with session_scope(db_url) as session:
        for n in range(130):
            claim_run_id(session, f"run-{n:03}", "support_triage", "acme" if n % 2 else "globex")
    with session_scope(db_url) as session:
        for n in range(130):
            claim = session.get(RunIdClaim, f"run-{n:03}")
            assert claim is not None
            claim.claimed_at = T0 + timedelta(seconds=n)
            session.add(claim)
            run_id = f"run-{n:03}"
            if n < 60:
                record_run_end(session, run_id, "completed", T0 + timedelta(hours=1))
            elif n < 100:
                record_step_event(session, event(run_id, f"{n}-1", "done"))
                record_step_event(session, event(run_id, f"{n}-2", "awaiting_review"))
            elif n % 3:
                record_step_event(session, event(run_id, f"{n}-1", "running"))
    with session_scope(db_url) as session:
        pages = [
            [row.run_id for row in list_runs(session, RunQuery(offset=offset, limit=50))]
            for offset in (0, 50, 100)
        ]
        counts = {
            state: count_runs(session, RunQuery(state=state))
            for state in ("completed", "awaiting_review", "running", "stopped")
        }
        waiting = list_runs(session, RunQuery(state="awaiting_review", limit=50))
        acme_done = count_runs(session, RunQuery(state="completed", tenants=("acme",)))
        unended = unended_runs(session, RunQuery(state="completed"), limit=500)
    newest_first = [f"run-{n:03}" for n in reversed(range(130))]
    assert pages == [newest_first[:50], newest_first[50:100], newest_first[100:]]
    assert counts == {"completed": 60, "awaiting_review": 40, "running": 30, "stopped": 0}
    assert len(waiting) == 40 and {row.last_state for row in waiting} == {"awaiting_review"}
    assert acme_done == 30
    assert [row.run_id for row in unended] == newest_first[:70]
