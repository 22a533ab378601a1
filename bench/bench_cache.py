"""Semantic cache lookup at 100,000 entries: latency of the in-process index, and its recall.

Fills one partition's index (the worst case: every entry in the same tenant, workflow, step,
prompt version and model) with 100,000 unit vectors of 384 dimensions (all-MiniLM-L6-v2's
size), then asks 2,000 queries that are noisy copies of stored vectors (cosine about 0.9 to
their source, as a paraphrase is). Prints lookup p50/p95/p99 and recall@1 against an exhaustive
search. ``python -m bench.bench_cache [--entries N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from activities.cache_index import VectorIndex


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--dimensions", type=int, default=384)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    # Clustered like real inputs: topics, and entries spread around them.
    topics = _unit(rng.standard_normal((500, args.dimensions)))
    stored = _unit(
        topics[rng.integers(0, len(topics), args.entries)]
        + 0.8 * rng.standard_normal((args.entries, args.dimensions)) / np.sqrt(args.dimensions)
    )
    index = VectorIndex(args.dimensions)
    started = time.perf_counter()
    for start in range(0, args.entries, 10_000):
        block = stored[start : start + 10_000]
        index.add(list(range(start + 1, start + 1 + len(block))), block)
    build_s = time.perf_counter() - started
    sources = rng.integers(0, args.entries, args.queries)
    queries = _unit(
        stored[sources]
        + 0.5 * rng.standard_normal((args.queries, args.dimensions)) / np.sqrt(args.dimensions)
    )
    latencies, cpu, found = [], [], 0
    for query in queries:
        t0, c0 = time.perf_counter(), time.thread_time()
        index.search(query, threshold=0.8, limit=5)
        latencies.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    for query in queries:  # apart: the exhaustive search would evict the index from the caches
        hits = index.search(query, threshold=0.8, limit=5)
        exhaustive = int(np.argmax(stored @ query)) + 1
        found += bool(hits) and hits[0][0] == exhaustive
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    cpu50, cpu99 = np.percentile(cpu, [50, 99])
    print(
        f"semantic cache lookup, {args.entries:,} entries x {args.dimensions} dims "
        f"(index built in {build_s:.1f} s): p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
        f"p99 {p99:.2f} ms (target <= 5 ms); CPU per lookup p50 {cpu50:.2f} ms, "
        f"p99 {cpu99:.2f} ms (wall minus CPU: waiting for a core); "
        f"recall@1 vs exhaustive {found / args.queries:.3f}"
    )


if __name__ == "__main__":
    main()
