"""The Temporal SDK's own metrics (workflow task latency, schedule-to-start, slots, polls,
sticky cache, RPC requests) in Tether's ``/metrics``.

Why a ``MetricBuffer`` rather than the SDK's ``PrometheusConfig``: PrometheusConfig makes the
SDK's core serve its own HTTP endpoint in each worker process (one port each, and a scrape
target per worker), apart from Tether's metrics. The buffer hands the SDK's updates to Python
instead; ``SdkMetricsBridge`` writes them into prometheus-client, so under
``PROMETHEUS_MULTIPROC_DIR`` every worker's SDK figures land in the same files as Tether's and
the web process serves them all on one ``/metrics``. The cost is one drain a second per worker.

Only worker processes connect with ``metrics_runtime()``; other processes keep the default
runtime, which records no SDK metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter, Gauge, Histogram
from temporalio.client import Client
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetricUpdate,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

__all__ = ["DRAIN_EVERY_S", "SdkMetricsBridge", "draining_sdk_metrics", "metrics_runtime"]

log = logging.getLogger(__name__)

DRAIN_EVERY_S = 1.0
_BUFFER_SIZE = 100_000
_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

_runtime: Runtime | None = None
_buffer: MetricBuffer | None = None


def metrics_runtime() -> Runtime:
    """The process's one Temporal runtime whose SDK metrics go to a buffer (made on first use)."""
    global _runtime, _buffer
    if _runtime is None:
        _buffer = MetricBuffer(_BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        _runtime = Runtime(telemetry=TelemetryConfig(metrics=_buffer))
    return _runtime


_Metric = Counter | Gauge | Histogram


class SdkMetricsBridge:
    """Turns buffered SDK metric updates into prometheus-client metrics.

    A metric's label names are those of its first update; a later update without one of them
    gets ``""``, and attributes beyond them are dropped (the SDK's are fixed per metric).
    """

    def __init__(self) -> None:
        self._metrics: dict[str, tuple[_Metric, tuple[str, ...]]] = {}

    def apply(self, updates: list[BufferedMetricUpdate]) -> None:
        for update in updates:
            metric, names = self._metric_for(update)
            attributes = update.attributes
            values = [str(attributes.get(name, "")) for name in names]
            child = metric.labels(*values) if names else metric
            if isinstance(child, Counter):
                child.inc(update.value)
            elif isinstance(child, Gauge):
                child.set(update.value)
            else:
                child.observe(update.value)

    def _metric_for(self, update: BufferedMetricUpdate) -> tuple[_Metric, tuple[str, ...]]:
        name = update.metric.name
        known = self._metrics.get(name)
        if known is not None:
            return known
        names = tuple(sorted(update.attributes))
        doc = update.metric.description or name
        kind = update.metric.kind
        metric: _Metric
        if kind == BUFFERED_METRIC_KIND_COUNTER:
            metric = Counter(name, doc, names)
        elif kind == BUFFERED_METRIC_KIND_GAUGE:
            metric = Gauge(name, doc, names, multiprocess_mode="livesum")
        else:
            metric = Histogram(name, doc, names, buckets=_SECONDS_BUCKETS)
        self._metrics[name] = (metric, names)
        return metric, names


_bridge = SdkMetricsBridge()


@asynccontextmanager
async def draining_sdk_metrics(client: Client) -> AsyncIterator[None]:
    """While the block runs, move the SDK's buffered metrics into prometheus-client every
    ``DRAIN_EVERY_S``; a client on another runtime has none to move."""
    buffer = _buffer
    if buffer is None or client.service_client.config.runtime is not _runtime:
        yield
        return

    def drain() -> None:
        _bridge.apply(list(buffer.retrieve_updates()))

    async def drain_forever() -> None:
        while True:
            await asyncio.sleep(DRAIN_EVERY_S)
            try:
                drain()
            except Exception:
                log.exception("moving the Temporal SDK's metrics failed")

    task = asyncio.create_task(drain_forever())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        drain()
