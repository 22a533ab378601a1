"""Rate-limit overhead per step: what the checkpoint's limit work costs in the store.

Run ``python -m bench.bench_limits`` (``--steps N``, ``--workers W``, ``--database-url URL``).
Each step does what ``activities.llm_step.rate_limits`` does around a model call: lock its
windows (user per minute and per day, tenant per minute, provider per minute), check them,
count the step, and settle it with its actual tokens; W threads (workers) share one store,
users spread over a tenant. Prints p50/p95 of the limit work per step and the steps per second
it allows. Default: a fresh SQLite file; pass a PostgreSQL URL to measure that instead. Results
also go to bench/results/limits.json. Nothing is asserted; no target is set by the issue.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from policies.limits import LimitWindow, first_breach
from tether.store.engine import dispose_all, session_scope
from tether.store.limits import (
    LimitSubject,
    charge_windows,
    is_charged,
    lock_windows,
    settle_charge,
)

USER_WINDOWS = [
    LimitWindow(seconds=60, requests=1_000_000, tokens=10**12),
    LimitWindow(seconds=86_400, requests=10**9),
]
TENANT_WINDOWS = [LimitWindow(seconds=60, requests=10**9, tokens=10**12)]
PROVIDER_WINDOWS = [LimitWindow(seconds=60, requests=10**9, tokens=10**12)]


def one_step(url: str, user: str) -> tuple[float, float]:
    """(checkpoint ms, settle ms) for one step of ``user``."""
    subjects = [
        LimitSubject("user", user, USER_WINDOWS, ("acme", user)),
        LimitSubject("tenant", "acme", TENANT_WINDOWS, ("acme",)),
        LimitSubject("provider", "openai", PROVIDER_WINDOWS, ("openai",)),
    ]
    key = uuid.uuid4().hex
    started = time.perf_counter()
    now = time.time()  # one instant per checkpoint, as the activity does: the windows it locked
    with session_scope(url) as session:
        counts = lock_windows(session, subjects, now)
        if not is_charged(session, key) and first_breach(counts, 700, 2) is None:
            charge_windows(session, key, subjects, now, 700, 2)
    checked = time.perf_counter()
    with session_scope(url) as session:
        settle_charge(session, key, 512, 2)
    return (checked - started) * 1000, (time.perf_counter() - checked) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'store.db'}"
        one_step(url, "warm-up")  # migrates the store
        timings: list[tuple[float, float]] = []
        lock = threading.Lock()

        def worker(w: int) -> None:
            for n in range(args.steps // args.workers):
                timing = one_step(url, f"user{(w * 7 + n) % 50}")
                with lock:
                    timings.append(timing)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        dispose_all()
    checks = sorted(t[0] for t in timings)
    settles = sorted(t[1] for t in timings)
    result = {
        "store": url.split(":", 1)[0],
        "steps": len(timings),
        "workers": args.workers,
        "checkpoint_p50_ms": round(statistics.median(checks), 3),
        "checkpoint_p95_ms": round(checks[int(len(checks) * 0.95) - 1], 3),
        "settle_p50_ms": round(statistics.median(settles), 3),
        "settle_p95_ms": round(settles[int(len(settles) * 0.95) - 1], 3),
        "steps_per_s": round(len(timings) / elapsed, 1),
    }
    print(
        f"rate limits on {result['store']}, {result['workers']} workers, {result['steps']} steps: "
        f"checkpoint p50 {result['checkpoint_p50_ms']} ms / p95 {result['checkpoint_p95_ms']} ms, "
        f"settle p50 {result['settle_p50_ms']} ms / p95 {result['settle_p95_ms']} ms, "
        f"{result['steps_per_s']} steps/s"
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "limits.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
