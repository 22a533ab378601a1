"""Provider health in one worker process: a circuit breaker and call statistics per model.

Every activity of a worker shares one :class:`ProviderHealth` (:func:`provider_health`). A route
asks :meth:`ProviderHealth.should_skip` before it spends retries on a model, takes a permit with
:meth:`ProviderHealth.acquire`, and reports how the call went with :meth:`ProviderHealth.record`
(or wraps the call in :meth:`ProviderHealth.observe`). :meth:`ProviderHealth.snapshot` is what a
later change publishes to the store and ``/api/providers``.

The methods take a :class:`threading.Lock` for a few microseconds and never await, so the
registry is safe from asyncio tasks and from threads (sync activities) alike.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from policies.breaker import (
    BreakerState,
    BreakerStatus,
    CircuitBreaker,
    Outcome,
    Permit,
    classify,
)
from policies.guard_routing import ProviderHealthPolicy

__all__ = [
    "ModelHealth",
    "ProviderHealth",
    "ProviderHealthSnapshot",
    "configure_provider_health",
    "percentile",
    "provider_health",
]

_MAX_SAMPLES = 2000
"""Calls kept per model for the error rate and percentiles (the newest, within the window)."""


class ModelHealth(BaseModel):
    """One provider/model's health at the time of a snapshot."""

    model_config = ConfigDict(frozen=True)

    model: str
    provider: str
    state: BreakerState
    opened_at: datetime | None
    open_until: datetime | None
    trips: int
    breaker_calls: int
    breaker_failures: int
    calls: int
    failures: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class ProviderHealthSnapshot(BaseModel):
    """Every model a worker has called, as it looks to that worker now."""

    model_config = ConfigDict(frozen=True)

    worker: str
    taken_at: datetime
    window_s: float
    models: list[ModelHealth]


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class _Sample:
    at: float
    latency_s: float
    outcome: Outcome


@dataclass
class _Entry:
    breaker: CircuitBreaker
    samples: deque[_Sample] = field(default_factory=lambda: deque(maxlen=_MAX_SAMPLES))


class ProviderHealth:
    """The breakers and call statistics of one worker process, keyed by ``provider/model``.

    Args:
        policy: Breaker policies, call timeouts and the statistics window.
        clock: A monotonic clock in seconds (injected by tests).
        wall_clock: Seconds since the epoch, to date snapshots (injected by tests).
        worker: This worker's name in snapshots; defaults to ``host:pid``.
    """

    def __init__(
        self,
        policy: ProviderHealthPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        worker: str | None = None,
    ) -> None:
        self.policy = policy or ProviderHealthPolicy()
        self._clock = clock
        self._wall_clock = wall_clock
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def call_timeout_s(self, model_id: str) -> float:
        """The per-call timeout the policy gives ``model_id``."""
        return self.policy.call_timeout_for(model_id)

    def should_skip(self, model_id: str) -> bool:
        """Whether a route should skip ``model_id`` now: its breaker is open, or half-open with
        every probe slot taken. Takes no probe slot; :meth:`acquire` does."""
        with self._lock:
            return not self._entry(model_id).breaker.would_allow(self._clock())

    def split_chain(self, chain: list[str]) -> tuple[list[str], list[str]]:
        """A route's fallback chain split into the models to try now, in order, and the ones
        skipped because their breaker is open (to record why the route skipped them)."""
        with self._lock:
            now = self._clock()
            usable = [m for m in chain if self._entry(m).breaker.would_allow(now)]
        return usable, [model for model in chain if model not in usable]

    def acquire(self, model_id: str) -> Permit:
        """Asks to call ``model_id`` now; hand the permit back to :meth:`record`."""
        with self._lock:
            return self._entry(model_id).breaker.allow(self._clock())

    def record(
        self,
        model_id: str,
        error: BaseException | None,
        latency_s: float,
        permit: Permit | None = None,
    ) -> BreakerState:
        """Reports a call to ``model_id`` that took ``latency_s`` and raised ``error`` (None: it
        succeeded); returns the breaker's state afterwards."""
        with self._lock:
            entry = self._entry(model_id)
            outcome = classify(error, entry.breaker.policy)
            now = self._clock()
            entry.samples.append(_Sample(at=now, latency_s=max(0.0, latency_s), outcome=outcome))
            self._prune(entry, now)
            return entry.breaker.record(outcome, latency_s, now, permit)

    @contextmanager
    def observe(self, model_id: str, permit: Permit | None = None) -> Iterator[None]:
        """Times the block and records how it ended; the block's exception propagates.

        Cancellation (``asyncio.CancelledError``, a ``BaseException``) records as neutral.
        """
        started = self._clock()
        try:
            yield
        except BaseException as exc:
            self.record(model_id, exc, self._clock() - started, permit)
            raise
        self.record(model_id, None, self._clock() - started, permit)

    def state(self, model_id: str) -> BreakerState:
        with self._lock:
            return self._entry(model_id).breaker.state(self._clock())

    def snapshot(self) -> ProviderHealthSnapshot:
        """Every model's breaker state, error rate and latency percentiles, as of now."""
        with self._lock:
            now = self._clock()
            wall_now = self._wall_clock()
            rows: list[tuple[str, BreakerStatus, list[_Sample]]] = []
            for model_id, entry in sorted(self._entries.items()):
                self._prune(entry, now)
                rows.append((model_id, entry.breaker.status(now), list(entry.samples)))

        def wall(at: float | None) -> datetime | None:
            if at is None:
                return None
            return datetime.fromtimestamp(wall_now - (now - at), tz=UTC)

        models = []
        for model_id, status, samples in rows:
            latencies = sorted(sample.latency_s * 1000 for sample in samples)
            failures = sum(sample.outcome == "failure" for sample in samples)
            models.append(
                ModelHealth(
                    model=model_id,
                    provider=model_id.split("/", 1)[0],
                    state=status.state,
                    opened_at=wall(status.opened_at),
                    open_until=wall(status.open_until),
                    trips=status.trips,
                    breaker_calls=status.calls,
                    breaker_failures=status.failures,
                    calls=len(samples),
                    failures=failures,
                    error_rate=failures / len(samples) if samples else 0.0,
                    latency_p50_ms=percentile(latencies, 0.5),
                    latency_p95_ms=percentile(latencies, 0.95),
                )
            )
        return ProviderHealthSnapshot(
            worker=self.worker,
            taken_at=datetime.fromtimestamp(wall_now, tz=UTC),
            window_s=self.policy.stats_window_s,
            models=models,
        )

    def _entry(self, model_id: str) -> _Entry:
        entry = self._entries.get(model_id)
        if entry is None:
            entry = _Entry(breaker=CircuitBreaker(self.policy.breaker_for(model_id)))
            self._entries[model_id] = entry
        return entry

    def _prune(self, entry: _Entry, now: float) -> None:
        horizon = now - self.policy.stats_window_s
        while entry.samples and entry.samples[0].at <= horizon:
            entry.samples.popleft()


_process_lock = threading.Lock()
_process_health: ProviderHealth | None = None


def provider_health() -> ProviderHealth:
    """This worker process's registry, created with the default policy on first use."""
    global _process_health
    with _process_lock:
        if _process_health is None:
            _process_health = ProviderHealth()
        return _process_health


def configure_provider_health(policy: ProviderHealthPolicy) -> ProviderHealth:
    """Replaces this process's registry with a fresh one under ``policy`` (worker start-up)."""
    global _process_health
    with _process_lock:
        _process_health = ProviderHealth(policy)
        return _process_health
