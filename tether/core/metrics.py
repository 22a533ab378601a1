"""Tether's Prometheus metrics: every metric the engine exports, declared once, and the text
``/metrics`` serves.

Several processes on one host (workers, the web app) share one aggregate when each is started
with ``PROMETHEUS_MULTIPROC_DIR`` pointing at the same empty folder: prometheus-client then keeps
each process's values in files there, and ``render_metrics`` (in the web process) sums them.
Without it, each process serves only its own figures.

Labels stay bounded: workflow, step, model, provider, tenant and feature names come from code and
policy, never from a run id, a user or a text.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = [
    "BREAKER_STATE",
    "BUDGET_ALERTS",
    "CACHE_LOOKUPS",
    "CONTENT_TYPE",
    "COST_USD",
    "GUARD_EVENTS",
    "MULTIPROC_DIR_VARIABLE",
    "REVIEWS_OPENED",
    "REVIEW_DECISIONS",
    "RUNS",
    "RUN_SECONDS",
    "STEPS",
    "STEP_ERRORS",
    "STEP_PHASE_SECONDS",
    "TIME_TO_DECISION_SECONDS",
    "TOKENS",
    "QueueDepthCollector",
    "render_metrics",
]

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

if os.environ.get(MULTIPROC_DIR_VARIABLE):
    # Files are named by process id; containers sharing the folder (one volume, several worker
    # containers) each have a pid 1, so the host name (the container's id) goes in the name too.
    _HOST = socket.gethostname().replace("_", "-")
    values.ValueClass = values.MultiProcessValue(lambda: f"{_HOST}-{os.getpid()}")

_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_HUMAN_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 86400, 3 * 86400)
_RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)

STEPS = Counter(
    "tether_steps", "LLM step executions, by outcome", ["workflow", "step", "model", "status"]
)
STEP_PHASE_SECONDS = Histogram(
    "tether_step_phase_seconds",
    "Where a step's time goes: model (provider calls), queue (scheduled until a worker took "
    "it), orchestration (the rest of the activity: store, scoring, guards), human (waiting "
    "for a reviewer)",
    ["workflow", "step", "phase"],
    buckets=_STEP_BUCKETS + _HUMAN_BUCKETS[5:],
)
STEP_SECONDS_TOTAL_PHASE = "total"
"""Phase label of a step's whole activity time (queue excluded)."""
TOKENS = Counter(
    "tether_tokens", "Model tokens, in and out", ["workflow", "step", "model", "direction"]
)
COST_USD = Counter(
    "tether_cost_usd",
    "Model spend in USD (every call: main, repairs, samples, judge)",
    ["workflow", "step", "tenant", "feature"],
)
STEP_ERRORS = Counter(
    "tether_step_errors",
    "LLM steps that ended in an error, by error type and provider",
    ["workflow", "step", "error_type", "provider"],
)
GUARD_EVENTS = Counter(
    "tether_guard_events", "What the guards decided, by guard and outcome", ["guard", "outcome"]
)
CACHE_LOOKUPS = Counter(
    "tether_cache_lookups", "Response cache look-ups (hit rate: hit / all)", ["workflow", "result"]
)
BREAKER_STATE = Gauge(
    "tether_breaker_state",
    "A provider's circuit breaker as last seen by a step: 0 closed, 1 half-open, 2 open",
    ["provider"],
    multiprocess_mode="mostrecent",
)
RUNS = Counter("tether_runs", "Runs that ended, by final status", ["workflow", "status"])
RUN_SECONDS = Histogram(
    "tether_run_seconds",
    "A run's time from start to end (end to end, human waits included)",
    ["workflow", "status"],
    buckets=_RUN_BUCKETS,
)
REVIEWS_OPENED = Counter(
    "tether_reviews_opened",
    "Steps handed to a human (review rate: this over tether_steps_total)",
    ["workflow", "step", "reason"],
)
REVIEW_DECISIONS = Counter(
    "tether_review_decisions", "Reviewers' decisions", ["workflow", "decision", "channel"]
)
TIME_TO_DECISION_SECONDS = Histogram(
    "tether_time_to_decision_seconds",
    "From a review item opening to its decision",
    ["workflow", "decision"],
    buckets=_HUMAN_BUCKETS,
)
BUDGET_ALERTS = Counter(
    "tether_budget_alerts",
    "Budget alerts sent: a scope's spend crossed a threshold of its budget",
    ["scope", "threshold"],
)


class QueueDepthCollector(Collector):
    """Reads the review queue's depth from the store at scrape time (one count query), so every
    web process reports the same figure without any worker keeping it."""

    def __init__(self, count_pending: Callable[[], int]) -> None:
        self._count_pending = count_pending

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "tether_review_queue_depth", "Review items waiting for a decision"
        )
        depth.add_metric([], float(self._count_pending()))
        yield depth


def render_metrics(*extra: Collector, multiproc_dir: str | None = None) -> bytes:
    """The Prometheus text of this host's metrics: every process's when a multiprocess folder
    is set (``multiproc_dir`` or ``PROMETHEUS_MULTIPROC_DIR``), else this process's own."""
    folder = multiproc_dir or os.environ.get(MULTIPROC_DIR_VARIABLE)
    registry = CollectorRegistry()
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_Everything())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Everything(Collector):
    """The process-wide default registry, seen through a fresh one that adds scrape-time
    collectors without registering them globally."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()
