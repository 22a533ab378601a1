"""A circuit breaker per provider/model, as a pure state machine.

The caller passes the time in (any monotonic clock, in seconds); nothing here reads a clock, sleeps
or locks. ``activities.provider_health`` keeps one breaker per model, feeds it each call's outcome
and latency, and serialises access to it.

States: ``closed`` (calls go through; the sliding window counts failures and slow calls) →
``open`` (calls are skipped for a cool-down) → ``half_open`` (a few probe calls go through) →
``closed`` when every probe succeeds, or ``open`` again, with a longer cool-down, when one fails.
Every state change starts a new *epoch*; an outcome reported with a permit of an older epoch (a
call that started before the change) does not move the breaker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, assert_never

from policies.guard_routing import BreakerPolicy
from tether.core.errors import (
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)

__all__ = ["BreakerState", "BreakerStatus", "CircuitBreaker", "Outcome", "Permit", "classify"]

BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["success", "failure", "neutral"]
"""How a call ended for the breaker: ``neutral`` calls (a 4xx, a 429 unless the policy counts
it, an error of our own) say nothing about the provider's health and are ignored."""


def classify(error: BaseException | None, policy: BreakerPolicy) -> Outcome:
    """The breaker outcome of a call that raised ``error`` (None: it succeeded).

    5xx, timeouts and connection errors (``ProviderUnavailableError``, a ``ProviderError`` with a
    5xx or no status, ``TimeoutError``, ``ConnectionError``) are failures. A rejected request
    (400/401/403/404: ``ProviderRejectedError``) is neutral: the provider answered, the request
    was wrong. A 429 is a failure only when ``policy.rate_limit_is_failure``. Anything else is
    an error of ours, not the provider's, and neutral.
    """
    if error is None:
        return "success"
    if isinstance(error, ProviderRateLimitedError):
        return "failure" if policy.rate_limit_is_failure else "neutral"
    if isinstance(error, ProviderRejectedError):
        return "neutral"
    if isinstance(error, ProviderUnavailableError):
        return "failure"
    if isinstance(error, ProviderError):
        status = error.status_code
        if status == 429:
            return "failure" if policy.rate_limit_is_failure else "neutral"
        return "failure" if status is None or status >= 500 else "neutral"
    if isinstance(error, TimeoutError | ConnectionError):
        return "failure"
    return "neutral"


@dataclass(frozen=True)
class Permit:
    """The answer to :meth:`CircuitBreaker.allow`; truthy when the call may go ahead.

    Attributes:
        allowed: Whether the call may go ahead.
        epoch: The breaker's epoch when the permit was given; hand the permit back to ``record``.
        probe: The probe's number (1, 2, ...) when the breaker is half-open, else None.
    """

    allowed: bool
    epoch: int
    probe: int | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class BreakerStatus:
    """What a breaker looks like at one moment (for health snapshots)."""

    state: BreakerState
    opened_at: float | None
    open_until: float | None
    cooldown_s: float | None
    trips: int
    calls: int
    failures: int
    slow_calls: int
    probes_in_flight: int


@dataclass(frozen=True)
class _Call:
    at: float
    failed: bool
    slow: bool


class CircuitBreaker:
    """One provider/model's breaker. Not thread-safe: the caller serialises access."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self._state: BreakerState = "closed"
        self._epoch = 0
        maxlen = policy.window_calls if policy.window == "count" else None
        self._window: deque[_Call] = deque(maxlen=maxlen)
        self._trips = 0
        self._opened_at: float | None = None
        self._cooldown_s: float | None = None
        self._next_probe = 0
        self._probes: dict[int, float] = {}
        self._probe_successes = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def state(self, now: float) -> BreakerState:
        """The state at ``now`` (an open breaker whose cool-down is over is half-open)."""
        self._advance(now)
        return self._state

    def would_allow(self, now: float) -> bool:
        """Whether :meth:`allow` would let a call through now, without taking a probe slot."""
        self._advance(now)
        if self._state == "closed":
            return True
        if self._state == "open":
            return False
        self._expire_probes(now)
        return self._probe_slots_left() > 0

    def allow(self, now: float) -> Permit:
        """Asks to make a call now; a half-open breaker hands out its probe slots one by one."""
        self._advance(now)
        if self._state == "closed":
            return Permit(allowed=True, epoch=self._epoch)
        if self._state == "open":
            return Permit(allowed=False, epoch=self._epoch)
        self._expire_probes(now)
        if self._probe_slots_left() <= 0:
            return Permit(allowed=False, epoch=self._epoch)
        self._next_probe += 1
        self._probes[self._next_probe] = now
        return Permit(allowed=True, epoch=self._epoch, probe=self._next_probe)

    def record(
        self, outcome: Outcome, latency_s: float, now: float, permit: Permit | None = None
    ) -> BreakerState:
        """Reports how a call ended; returns the state afterwards.

        Args:
            outcome: From :func:`classify`.
            latency_s: How long the call took; at least ``slow_call_s`` makes it slow.
            now: The time the call ended.
            permit: The permit ``allow`` gave the call. Without one the call counts only while
                the breaker is closed; with one of an older epoch it does not count at all.
        """
        self._advance(now)
        if permit is not None and permit.epoch != self._epoch:
            return self._state
        if self._state == "closed":
            self._record_closed(outcome, latency_s, now)
        elif self._state == "half_open":
            if permit is not None and permit.probe is not None:
                self._record_probe(outcome, latency_s, now, permit.probe)
        elif self._state == "open":
            pass
        else:
            assert_never(self._state)
        return self._state

    def status(self, now: float) -> BreakerStatus:
        self._advance(now)
        self._prune(now)
        open_until = None
        if self._state == "open" and self._opened_at is not None and self._cooldown_s is not None:
            open_until = self._opened_at + self._cooldown_s
        return BreakerStatus(
            state=self._state,
            opened_at=self._opened_at,
            open_until=open_until,
            cooldown_s=self._cooldown_s,
            trips=self._trips,
            calls=len(self._window),
            failures=sum(call.failed for call in self._window),
            slow_calls=sum(call.slow for call in self._window),
            probes_in_flight=len(self._probes),
        )

    # --- transitions -------------------------------------------------------------------------

    def _record_closed(self, outcome: Outcome, latency_s: float, now: float) -> None:
        if outcome == "neutral":
            return
        self._window.append(
            _Call(at=now, failed=outcome == "failure", slow=latency_s >= self.policy.slow_call_s)
        )
        self._prune(now)
        failures = sum(call.failed for call in self._window)
        if failures >= self.policy.failure_threshold:
            self._open(now)
            return
        calls = len(self._window)
        if calls >= self.policy.min_calls:
            slow = sum(call.slow for call in self._window)
            if slow / calls >= self.policy.slow_call_rate:
                self._open(now)

    def _record_probe(self, outcome: Outcome, latency_s: float, now: float, probe: int) -> None:
        if self._probes.pop(probe, None) is None:
            return  # a probe that already timed out, or reported twice
        if outcome == "neutral":
            return  # its slot frees up for another probe
        if outcome == "failure" or latency_s >= self.policy.slow_call_s:
            self._open(now)
            return
        self._probe_successes += 1
        if self._probe_successes >= self.policy.half_open_probes:
            self._close()

    def _open(self, now: float) -> None:
        self._trips += 1
        growth = self.policy.cooldown_multiplier ** (self._trips - 1)
        self._cooldown_s = min(self.policy.cooldown_s * growth, self.policy.max_cooldown_s)
        self._opened_at = now
        self._enter("open")

    def _close(self) -> None:
        self._trips = 0
        self._opened_at = None
        self._cooldown_s = None
        self._enter("closed")

    def _enter(self, state: BreakerState) -> None:
        self._state = state
        self._epoch += 1
        self._window.clear()
        self._probes.clear()
        self._probe_successes = 0

    def _advance(self, now: float) -> None:
        if (
            self._state == "open"
            and self._opened_at is not None
            and self._cooldown_s is not None
            and now >= self._opened_at + self._cooldown_s
        ):
            self._enter("half_open")

    # --- bookkeeping -------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        if self.policy.window != "time":
            return
        horizon = now - self.policy.window_s
        while self._window and self._window[0].at <= horizon:
            self._window.popleft()

    def _expire_probes(self, now: float) -> None:
        lost = [n for n, at in self._probes.items() if now - at >= self.policy.probe_timeout_s]
        for probe in lost:
            del self._probes[probe]

    def _probe_slots_left(self) -> int:
        return self.policy.half_open_probes - self._probe_successes - len(self._probes)
