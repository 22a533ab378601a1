"""Provider health: a breaker per model shared by a worker's activities, and its snapshot."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from activities.provider_health import (
    ProviderHealth,
    configure_provider_health,
    percentile,
    provider_health,
)
from policies.guard_routing import BreakerPolicy, ProviderHealthPolicy
from tether.core.errors import ProviderRejectedError, ProviderUnavailableError

WALL_START = 1_800_000_000.0


class FakeClock:
    """A monotonic clock the test moves by hand; ``wall`` runs alongside it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_START + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError("openai returned HTTP 503", provider="openai", status_code=503)


def health(clock: FakeClock, **breaker: object) -> ProviderHealth:
    settings: dict[str, object] = {"failure_threshold": 3, "cooldown_s": 30.0} | breaker
    policy = ProviderHealthPolicy(
        breaker=BreakerPolicy.model_validate(settings), stats_window_s=120.0
    )
    return ProviderHealth(policy, clock=clock, wall_clock=clock.wall, worker="w1")


def test_an_open_breaker_skips_the_model_at_once_and_recovers_after_a_probe() -> None:
    clock = FakeClock()
    registry = health(clock)
    assert not registry.should_skip("openai/gpt-4o")
    for _ in range(3):
        registry.record("openai/gpt-4o", outage(), 0.2, registry.acquire("openai/gpt-4o"))
    assert registry.should_skip("openai/gpt-4o")
    assert not registry.acquire("openai/gpt-4o")
    assert not registry.should_skip("anthropic/claude-sonnet-4-5")  # other models unaffected

    clock.advance(30.0)
    assert not registry.should_skip("openai/gpt-4o")  # half-open: one probe may go
    probe = registry.acquire("openai/gpt-4o")
    assert probe and probe.probe == 1
    assert registry.should_skip("openai/gpt-4o")  # the probe slot is taken
    assert registry.record("openai/gpt-4o", None, 0.3, probe) == "closed"
    assert not registry.should_skip("openai/gpt-4o")


def test_a_chain_splits_into_models_to_try_and_models_skipped() -> None:
    clock = FakeClock()
    registry = health(clock)
    chain = ["openai/gpt-4o", "anthropic/claude", "openai/gpt-4o-mini"]
    assert registry.split_chain(chain) == (chain, [])
    for _ in range(3):
        registry.record("openai/gpt-4o", outage(), 0.1)
    assert registry.split_chain(chain) == (
        ["anthropic/claude", "openai/gpt-4o-mini"],
        ["openai/gpt-4o"],
    )
    clock.advance(30.0)
    assert registry.split_chain(chain) == (chain, [])  # half-open: the probe may go


def test_a_route_spends_no_call_on_a_model_whose_breaker_is_open() -> None:
    clock = FakeClock()
    registry = health(clock)
    calls: list[str] = []

    def call_route(chain: list[str]) -> str:
        for model in chain:
            if registry.should_skip(model):
                continue
            permit = registry.acquire(model)
            if not permit:
                continue
            calls.append(model)
            try:
                with registry.observe(model, permit):
                    if model == "openai/gpt-4o":
                        raise outage()
            except ProviderUnavailableError:
                continue
            return model
        raise AssertionError("no model served")

    served = [call_route(["openai/gpt-4o", "anthropic/claude"]) for _ in range(6)]
    assert served == ["anthropic/claude"] * 6
    assert calls.count("openai/gpt-4o") == 3  # then the breaker opened
    assert calls.count("anthropic/claude") == 6


def test_observe_times_the_call_records_its_error_and_lets_it_propagate() -> None:
    clock = FakeClock()
    registry = health(clock)
    with pytest.raises(ProviderUnavailableError), registry.observe("openai/gpt-4o"):
        clock.advance(1.5)
        raise outage()
    with registry.observe("openai/gpt-4o"):
        clock.advance(0.5)
    model = registry.snapshot().models[0]
    assert (model.calls, model.failures, model.error_rate) == (2, 1, 0.5)
    assert (model.latency_p50_ms, model.latency_p95_ms) == (500.0, 1500.0)


def test_a_cancelled_probe_is_neutral_and_frees_its_slot() -> None:
    clock = FakeClock()
    registry = health(clock)
    for _ in range(3):
        registry.record("m/x", outage(), 0.1)
    clock.advance(30.0)
    probe = registry.acquire("m/x")
    with pytest.raises(asyncio.CancelledError), registry.observe("m/x", probe):
        raise asyncio.CancelledError
    assert registry.state("m/x") == "half_open"
    assert registry.acquire("m/x")


def test_rejected_requests_do_not_open_the_breaker() -> None:
    clock = FakeClock()
    registry = health(clock)
    for _ in range(10):
        registry.record(
            "m/x", ProviderRejectedError("401", provider="m", status_code=401), 0.1, None
        )
    assert registry.state("m/x") == "closed"
    model = registry.snapshot().models[0]
    assert (model.calls, model.failures, model.breaker_calls) == (10, 0, 0)


def test_slow_calls_open_the_breaker() -> None:
    clock = FakeClock()
    registry = health(clock, slow_call_s=5.0, min_calls=4, slow_call_rate=0.75)
    for _ in range(3):
        registry.record("m/x", None, 6.0)
    assert registry.record("m/x", None, 0.2) == "open"


def test_the_snapshot_reports_state_times_rates_and_percentiles() -> None:
    clock = FakeClock()
    registry = health(clock)
    for latency_ms in range(1, 21):  # 1..20 ms, all successes
        registry.record("b/ok", None, latency_ms / 1000)
    for _ in range(3):
        registry.record("a/down", outage(), 2.0)
    opened_wall = datetime.fromtimestamp(clock.wall(), tz=UTC)
    clock.advance(10.0)

    snapshot = registry.snapshot()
    assert snapshot.worker == "w1"
    assert snapshot.taken_at == datetime.fromtimestamp(clock.wall(), tz=UTC)
    assert snapshot.window_s == 120.0
    down, ok = snapshot.models
    assert (down.model, down.provider, down.state) == ("a/down", "a", "open")
    assert down.opened_at == opened_wall
    assert down.open_until == datetime.fromtimestamp(WALL_START + 100.0 + 30.0, tz=UTC)
    assert (down.trips, down.calls, down.failures, down.error_rate) == (1, 3, 3, 1.0)
    assert (ok.state, ok.opened_at, ok.calls, ok.error_rate) == ("closed", None, 20, 0.0)
    assert ok.latency_p50_ms == pytest.approx(10.0)
    assert ok.latency_p95_ms == pytest.approx(19.0)
    assert ok.breaker_calls == 20
    assert '"state":"open"' in snapshot.model_dump_json()


def test_the_snapshot_forgets_calls_older_than_the_stats_window() -> None:
    clock = FakeClock()
    registry = health(clock)
    registry.record("m/x", outage(), 1.0)
    clock.advance(60.0)
    registry.record("m/x", None, 0.1)
    clock.advance(60.0)  # the first call is now 120 s old
    model = registry.snapshot().models[0]
    assert (model.calls, model.failures, model.latency_p50_ms) == (1, 0, 100.0)


def test_each_model_gets_its_own_policy() -> None:
    clock = FakeClock()
    policy = ProviderHealthPolicy(
        breaker=BreakerPolicy(failure_threshold=3),
        breakers={"flaky": BreakerPolicy(failure_threshold=1)},
        call_timeouts_s={"flaky": 5.0},
    )
    registry = ProviderHealth(policy, clock=clock, wall_clock=clock.wall)
    assert registry.record("flaky/m", outage(), 0.1) == "open"
    assert registry.record("steady/m", outage(), 0.1) == "closed"
    assert registry.call_timeout_s("flaky/m") == 5.0
    assert registry.call_timeout_s("steady/m") == 60.0


def test_threads_racing_for_a_half_open_breaker_get_exactly_its_probes() -> None:
    clock = FakeClock()
    registry = health(clock, half_open_probes=2)
    for _ in range(3):
        registry.record("m/x", outage(), 0.1)
    clock.advance(30.0)
    barrier = threading.Barrier(16)
    granted: list[int | None] = []

    def race() -> None:
        barrier.wait()
        permit = registry.acquire("m/x")
        if permit:
            granted.append(permit.probe)

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(granted, key=str) == [1, 2]


def test_concurrent_threads_lose_no_record() -> None:
    registry = ProviderHealth(ProviderHealthPolicy(breaker=BreakerPolicy(failure_threshold=10_000)))

    def work(index: int) -> None:
        for n in range(200):
            error = outage() if (index + n) % 4 == 0 else None
            registry.record("m/x", error, 0.01, registry.acquire("m/x"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    model = registry.snapshot().models[0]
    assert (model.calls, model.failures) == (1600, 400)


async def test_asyncio_tasks_share_the_breaker_and_its_probe_slots() -> None:
    clock = FakeClock()
    registry = health(clock)

    async def failing_call() -> None:
        await asyncio.sleep(0)
        registry.record("m/x", outage(), 0.1, registry.acquire("m/x"))

    await asyncio.gather(*(failing_call() for _ in range(3)))
    assert registry.should_skip("m/x")
    clock.advance(30.0)

    async def try_probe() -> bool:
        await asyncio.sleep(0)
        return bool(registry.acquire("m/x"))

    results = await asyncio.gather(*(try_probe() for _ in range(50)))
    assert results.count(True) == 1


def test_one_registry_per_process() -> None:
    first = provider_health()
    assert provider_health() is first
    replaced = configure_provider_health(ProviderHealthPolicy(call_timeout_s=7.0))
    try:
        assert provider_health() is replaced is not first
        assert provider_health().call_timeout_s("any/model") == 7.0
    finally:
        configure_provider_health(ProviderHealthPolicy())


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.95, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0.95, 4.0),
        ([float(n) for n in range(1, 101)], 0.95, 95.0),
    ],
)
def test_percentile(values: list[float], fraction: float, expected: float | None) -> None:
    assert percentile(values, fraction) == expected


def test_percentile_rejects_a_fraction_out_of_range() -> None:
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 0.0)
