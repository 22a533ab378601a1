"""What the runs pages cost the store: writing a step event, listing runs, the dashboard.

Run ``python -m bench.bench_pages`` (``--runs N``). On a fresh SQLite store in a temporary
directory: writes N runs of 8 step events each (timed alone: the marginal cost inside the transaction
an activity already has open; and with a transaction and commit of its own), then times ``list_runs`` (500 newest runs with their cost, steps, state and
deciders) and ``dashboard_figures`` over 24 h with hourly buckets. Prints p50/p95 of each;
results also go to bench/results/pages.json. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tether.store.engine import dispose_all, session_scope
from tether.store.ledger import LedgerEntry
from tether.store.run_figures import dashboard_figures
from tether.store.run_ids import claim_run_id
from tether.store.run_list import RunQuery, list_runs
from tether.store.step_events import StepEventRow, record_step_event

STATES = ("running", "done", "awaiting_review", "approved", "running", "done", "running", "done")
STEPS = ("classify", "classify", "classify", "classify", "extract", "extract", "draft", "draft")


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{Path(home) / 'store.db'}"
        now = datetime.now(UTC)
        writes: list[float] = []
        inside: list[float] = []
        for n in range(args.runs):
            run_id = f"run-{n}"
            with session_scope(url) as session:
                claim_run_id(session, run_id, "support_triage", "acme")
                session.add(
                    LedgerEntry(
                        key=f"{run_id}/main",
                        run_id=run_id,
                        workflow="support_triage",
                        step="classify",
                        tenant="acme",
                        call="main",
                        activity_attempt=1,
                        model="simulated/cheap",
                        provider="simulated",
                        cost_usd=0.0007,
                        outcome="ok",
                    )
                )
            for i, (step, state) in enumerate(zip(STEPS, STATES, strict=True)):
                row = StepEventRow(
                    key=f"{run_id}/{i}",
                    run_id=run_id,
                    seq=0,
                    workflow="support_triage",
                    tenant="acme",
                    step=step,
                    state=state,
                    latency_ms=50.0 + (n * 7 + i) % 200 if state == "done" else None,
                    confidence_score=((n * 13 + i) % 100) / 100 if state == "done" else None,
                    actor="bob" if state == "approved" else None,
                    at=now - timedelta(minutes=(n * 3) % 1440),
                )
                started = time.perf_counter()
                with session_scope(url) as session:
                    marginal = time.perf_counter()
                    record_step_event(session, row)
                    inside.append(time.perf_counter() - marginal)
                writes.append(time.perf_counter() - started)
        listing: list[float] = []
        figures: list[float] = []
        for _ in range(20):
            started = time.perf_counter()
            with session_scope(url) as session:
                list_runs(session, RunQuery(tenants=("acme",)))
            listing.append(time.perf_counter() - started)
            started = time.perf_counter()
            with session_scope(url) as session:
                dashboard_figures(
                    session, ("acme",), since=now - timedelta(days=1), bucket=timedelta(hours=1)
                )
            figures.append(time.perf_counter() - started)
        dispose_all()
    results = {
        "runs": args.runs,
        "events": len(writes),
        "record_step_event_in_open_transaction": _ms(inside),
        "record_step_event_own_transaction": _ms(writes),
        "list_runs_500": _ms(listing),
        "dashboard_figures_24h": _ms(figures),
    }
    for name, value in results.items():
        print(f"{name:36} {value}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "pages.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
