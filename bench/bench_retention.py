"""The retention job's cost: how fast a prune deletes dead rows, and how long one batch (one
transaction, so the longest a prune holds a lock) takes.

Run ``python -m bench.bench_retention`` (``--rows N``). A fresh store (SQLite; PostgreSQL too
when ``TETHER_TEST_POSTGRES_URL`` is set, as ``scripts/test-services.sh`` sets it) gets N
expired cache entries without a verdict, N/10 live ones, 6,000 dead verdict rows of one workflow
step (1,000 beyond the 5,000 the learned rule reads) and N/2 rate-limit counters of old windows;
each table is then pruned batch by batch with the default policy (1,000 rows a batch). Printed:
rows deleted per second per table, the median and the longest batch. Results also go to
bench/results/retention.json. Nothing is asserted; the brief sets no target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from policies.retention_settings import RetentionPolicy
from tests.store.conftest import fresh_store_url
from tether.store.cache import CacheEntry
from tether.store.engine import session_scope, upgrade_database
from tether.store.limits import LimitCounter
from tether.store.retention import prune_cache_batch, prune_counters_batch

NOW = datetime.now(UTC)


def _entry(i: int, *, expires: datetime, verdict: str | None = None) -> dict[str, Any]:
    return {
        "partition": f"p{i % 50}",
        "route_scope": "scope-verdicts" if verdict else f"scope{i % 50}",
        "tenant": "acme",
        "workflow": "support_triage",
        "step": "classify",
        "prompt_version": "triage.classify@1",
        "model": "simulated/cheap",
        "input_digest": f"in{i}",
        "embedder": "local/all-MiniLM-L6-v2",
        "embedding": bytes(1536),
        "output": {"category": "billing"},
        "raw_output": "{}",
        "output_digest": f"out{i}",
        "confidence": {"score": 0.8},
        "provider": "simulated",
        "source_run_id": f"run{i}",
        "created_at": expires - timedelta(days=7),
        "expires_at": expires,
        "approved": False,
        "held": False,
        "verdict": verdict,
        "evicted_at": NOW - timedelta(days=1) if verdict else None,
    }


def _seed(url: str, rows: int) -> None:
    table: Any = CacheEntry.__table__  # type: ignore[attr-defined]
    counters: Any = LimitCounter.__table__  # type: ignore[attr-defined]
    dead = [_entry(i, expires=NOW - timedelta(hours=1)) for i in range(rows)]
    live = [_entry(rows + i, expires=NOW + timedelta(days=3)) for i in range(rows // 10)]
    judged = [
        _entry(2 * rows + i, expires=NOW - timedelta(days=2), verdict="rejected")
        for i in range(6_000)
    ]
    old = int((NOW - timedelta(days=3)).timestamp())
    with session_scope(url) as session:
        for chunk in (dead, live, judged):
            for start in range(0, len(chunk), 5_000):
                session.execute(insert(table), chunk[start : start + 5_000])
        session.execute(
            insert(counters),
            [
                {"key": f"c{i}", "requests": 1, "tokens": 1, "ends_at": old}
                for i in range(rows // 2)
            ],
        )


def _timed(url: str, batch: Callable[[Session], int], size: int) -> dict[str, float]:
    times: list[float] = []
    total = 0
    while True:
        started = time.perf_counter()
        with session_scope(url) as session:
            deleted = batch(session)
        times.append(time.perf_counter() - started)
        total += deleted
        if deleted < size:
            break
    return {
        "rows": total,
        "rows_per_s": round(total / sum(times)),
        "batch_ms_median": round(statistics.median(times) * 1000, 1),
        "batch_ms_max": round(max(times) * 1000, 1),
    }


def run(kind: str, url: str, rows: int) -> dict[str, Any]:
    upgrade_database(url)
    _seed(url, rows)
    policy = RetentionPolicy()
    size = policy.batch_rows
    cutoff = int((NOW - policy.limit_window_grace).timestamp())
    result = {
        "store": kind,
        "cache_entries": _timed(
            url,
            lambda s: prune_cache_batch(s, NOW, policy.keep_verdicts, policy.verdict_max_age, size),
            size,
        ),
        "limit_counters": _timed(url, lambda s: prune_counters_batch(s, cutoff, size), size),
    }
    for table in ("cache_entries", "limit_counters"):
        figures = result[table]
        print(
            f"{kind:8} {table:15} {figures['rows']:>7} rows  {figures['rows_per_s']:>7} rows/s  "
            f"batch median {figures['batch_ms_median']} ms, longest {figures['batch_ms_max']} ms"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgres"] if os.environ.get("TETHER_TEST_POSTGRES_URL") else [])
    results = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp, fresh_store_url(kind, Path(tmp)) as url:
            results.append(run(kind, url, args.rows))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "retention.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
