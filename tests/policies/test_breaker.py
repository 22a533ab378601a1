"""The circuit breaker state machine: every transition, driven by a fake time value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.breaker import CircuitBreaker, Outcome, Permit, classify
from policies.guard_routing import BreakerPolicy, ProviderHealthPolicy
from tether.core.errors import (
    ConfigurationError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)

FAST = 0.1


def policy(**changes: object) -> BreakerPolicy:
    base: dict[str, object] = {
        "failure_threshold": 3,
        "window_calls": 5,
        "min_calls": 4,
        "slow_call_s": 2.0,
        "slow_call_rate": 0.5,
        "cooldown_s": 10.0,
        "cooldown_multiplier": 2.0,
        "max_cooldown_s": 35.0,
        "probe_timeout_s": 60.0,
    }
    return BreakerPolicy.model_validate(base | changes)


def feed(breaker: CircuitBreaker, outcomes: str, now: float, latency: float = FAST) -> None:
    """Records ``s`` (success), ``f`` (failure), ``n`` (neutral) calls, all at ``now``."""
    names: dict[str, Outcome] = {"s": "success", "f": "failure", "n": "neutral"}
    for letter in outcomes:
        breaker.record(names[letter], latency, now)


def opened(at: float = 0.0, **changes: object) -> CircuitBreaker:
    breaker = CircuitBreaker(policy(**changes))
    feed(breaker, "fff", at)
    assert breaker.state(at) == "open"
    return breaker


# --- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "counts_429", "outcome"),
    [
        (None, False, "success"),
        (ProviderUnavailableError("503", provider="p", status_code=503), False, "failure"),
        (ProviderUnavailableError("timed out", provider="p"), False, "failure"),
        (ProviderError("502", provider="p", status_code=502), False, "failure"),
        (ProviderError("no answer", provider="p"), False, "failure"),
        (ProviderError("409", provider="p", status_code=409), False, "neutral"),
        (ProviderError("429", provider="p", status_code=429), False, "neutral"),
        (ProviderError("429", provider="p", status_code=429), True, "failure"),
        (TimeoutError(), False, "failure"),
        (ConnectionResetError(), False, "failure"),
        (ProviderRejectedError("400", provider="p", status_code=400), False, "neutral"),
        (ProviderRejectedError("401", provider="p", status_code=401), True, "neutral"),
        (ProviderRejectedError("404", provider="p", status_code=404), False, "neutral"),
        (ProviderRateLimitedError("429", provider="p"), False, "neutral"),
        (ProviderRateLimitedError("429", provider="p"), True, "failure"),
        (ConfigurationError("no price"), False, "neutral"),
        (ValueError("bug of ours"), False, "neutral"),
    ],
)
def test_classify(error: BaseException | None, counts_429: bool, outcome: Outcome) -> None:
    assert classify(error, policy(rate_limit_is_failure=counts_429)) == outcome


# --- closed ------------------------------------------------------------------------------------


def test_a_new_breaker_is_closed_and_allows_without_a_probe() -> None:
    breaker = CircuitBreaker(policy())
    permit = breaker.allow(0.0)
    assert permit and permit.probe is None
    assert breaker.state(0.0) == "closed"
    assert breaker.would_allow(0.0)


def test_opens_at_the_failure_threshold_and_not_before() -> None:
    breaker = CircuitBreaker(policy())
    feed(breaker, "ff", 1.0)
    assert breaker.state(1.0) == "closed"
    assert breaker.record("failure", FAST, 1.0) == "open"
    status = breaker.status(1.0)
    assert (status.opened_at, status.open_until, status.trips) == (1.0, 11.0, 1)


def test_successes_between_failures_do_not_reset_the_count_in_the_window() -> None:
    breaker = CircuitBreaker(policy())
    feed(breaker, "fsfs", 0.0)
    assert breaker.record("failure", FAST, 0.0) == "open"


def test_failures_sliding_out_of_a_count_window_no_longer_count() -> None:
    breaker = CircuitBreaker(policy(window_calls=4, min_calls=4, slow_call_rate=1.0))
    feed(breaker, "ffss", 0.0)
    assert breaker.record("failure", FAST, 0.0) == "closed"  # the first f slid out: f s s f
    assert breaker.status(0.0).failures == 2


def test_failures_older_than_a_time_window_no_longer_count() -> None:
    breaker = CircuitBreaker(policy(window="time", window_s=30.0))
    feed(breaker, "ff", 0.0)
    assert breaker.record("failure", FAST, 30.0) == "closed"  # the two at 0.0 are out
    feed(breaker, "f", 45.0)
    assert breaker.record("failure", FAST, 59.9) == "open"  # 30.0, 45.0, 59.9


def test_a_time_window_is_not_bounded_by_a_call_count() -> None:
    breaker = CircuitBreaker(policy(window="time", window_s=30.0, window_calls=1, min_calls=99))
    feed(breaker, "fssssssss", 0.0)
    feed(breaker, "f", 1.0)
    assert breaker.record("failure", FAST, 2.0) == "open"


def test_neutral_outcomes_are_ignored() -> None:
    breaker = CircuitBreaker(policy(min_calls=1))
    feed(breaker, "nnnnnnnnnn", 0.0, latency=99.0)
    assert breaker.state(0.0) == "closed"
    assert breaker.status(0.0).calls == 0


def test_a_slow_call_rate_at_the_threshold_opens_once_the_window_has_min_calls() -> None:
    breaker = CircuitBreaker(policy())  # min_calls 4, rate 0.5, slow >= 2.0 s
    breaker.record("success", 2.0, 0.0)
    breaker.record("success", 5.0, 0.0)
    assert breaker.state(0.0) == "closed"  # 2 of 2 slow, but fewer than min_calls
    breaker.record("success", 1.9, 0.0)
    assert breaker.state(0.0) == "closed"
    assert breaker.record("success", FAST, 0.0) == "open"  # 2 of 4 slow


def test_a_slow_call_rate_below_the_threshold_stays_closed() -> None:
    breaker = CircuitBreaker(policy(window_calls=10))
    breaker.record("success", 3.0, 0.0)
    feed(breaker, "sssssssss", 0.0)
    assert breaker.state(0.0) == "closed"
    assert breaker.status(0.0).slow_calls == 1


def test_a_slow_failure_counts_as_both() -> None:
    breaker = CircuitBreaker(policy())
    breaker.record("failure", 3.0, 0.0)
    status = breaker.status(0.0)
    assert (status.failures, status.slow_calls) == (1, 1)


# --- open --------------------------------------------------------------------------------------


def test_open_refuses_every_call_until_the_cool_down_ends() -> None:
    breaker = opened(at=0.0)
    for now in (0.0, 5.0, 9.999):
        permit = breaker.allow(now)
        assert not permit and permit.probe is None
        assert not breaker.would_allow(now)
        assert breaker.state(now) == "open"


def test_outcomes_reported_while_open_change_nothing() -> None:
    breaker = opened(at=0.0)
    feed(breaker, "sssss", 1.0)
    assert breaker.state(1.0) == "open"
    assert breaker.status(1.0).open_until == 10.0


def test_the_cool_down_ends_in_half_open() -> None:
    breaker = opened(at=0.0)
    assert breaker.state(10.0) == "half_open"
    assert breaker.status(10.0).open_until is None


# --- half-open ---------------------------------------------------------------------------------


def test_half_open_lets_exactly_the_configured_probes_through() -> None:
    breaker = opened(half_open_probes=2)
    assert breaker.would_allow(10.0)
    assert breaker.would_allow(10.0)  # asking does not take a slot
    first, second, third = breaker.allow(10.0), breaker.allow(10.0), breaker.allow(10.0)
    assert (bool(first), first.probe) == (True, 1)
    assert (bool(second), second.probe) == (True, 2)
    assert not third
    assert not breaker.would_allow(10.0)
    assert breaker.status(10.0).probes_in_flight == 2


def test_a_successful_probe_closes_and_starts_a_fresh_window() -> None:
    breaker = opened()
    probe = breaker.allow(10.0)
    assert breaker.record("success", FAST, 11.0, probe) == "closed"
    status = breaker.status(11.0)
    assert (status.opened_at, status.trips, status.calls) == (None, 0, 0)
    feed(breaker, "ff", 12.0)  # the failures that opened it are forgotten
    assert breaker.state(12.0) == "closed"


def test_every_probe_must_succeed_to_close() -> None:
    breaker = opened(half_open_probes=2)
    one, two = breaker.allow(10.0), breaker.allow(10.0)
    assert breaker.record("success", FAST, 10.5, one) == "half_open"
    assert not breaker.would_allow(10.5)  # one success and one in flight fill the two slots
    assert breaker.record("success", FAST, 11.0, two) == "closed"


def test_a_failed_probe_reopens_even_after_another_succeeded() -> None:
    breaker = opened(half_open_probes=2)
    one, two = breaker.allow(10.0), breaker.allow(10.0)
    breaker.record("success", FAST, 10.5, one)
    assert breaker.record("failure", FAST, 11.0, two) == "open"
    status = breaker.status(11.0)
    assert (status.opened_at, status.cooldown_s, status.open_until) == (11.0, 20.0, 31.0)


def test_a_slow_probe_reopens() -> None:
    breaker = opened()
    probe = breaker.allow(10.0)
    assert breaker.record("success", 2.0, 12.0, probe) == "open"


def test_the_cool_down_grows_with_each_failed_probe_up_to_the_cap_and_resets_on_close() -> None:
    breaker = opened(at=0.0)  # cool-down 10
    now = 0.0
    for expected in (20.0, 35.0, 35.0):  # 10 * 2, 10 * 4 capped at 35, capped again
        now = breaker.status(now).open_until or now
        assert breaker.state(now) == "half_open"
        breaker.record("failure", FAST, now, breaker.allow(now))
        assert breaker.status(now).cooldown_s == expected
    now += 35.0
    breaker.record("success", FAST, now, breaker.allow(now))
    assert breaker.state(now) == "closed"
    feed(breaker, "fff", now)
    assert breaker.status(now).cooldown_s == 10.0


def test_a_neutral_probe_frees_its_slot_without_moving_the_breaker() -> None:
    breaker = opened()
    probe = breaker.allow(10.0)
    assert not breaker.allow(10.0)
    assert breaker.record("neutral", FAST, 10.5, probe) == "half_open"
    again = breaker.allow(10.5)
    assert again and again.probe == 2


def test_a_lost_probe_frees_its_slot_after_the_probe_timeout_and_its_late_report_is_ignored() -> (
    None
):
    breaker = opened(probe_timeout_s=5.0)
    lost = breaker.allow(10.0)
    assert not breaker.allow(14.9)
    replacement = breaker.allow(15.0)
    assert replacement and replacement.probe == 2
    assert breaker.record("failure", FAST, 16.0, lost) == "half_open"
    assert breaker.record("success", FAST, 16.0, replacement) == "closed"


def test_a_probe_reported_twice_counts_once() -> None:
    breaker = opened(half_open_probes=2)
    one = breaker.allow(10.0)
    breaker.record("success", FAST, 10.1, one)
    assert breaker.record("success", FAST, 10.2, one) == "half_open"


def test_half_open_ignores_calls_without_a_probe_permit() -> None:
    breaker = opened()
    assert breaker.record("failure", FAST, 10.0) == "half_open"
    assert breaker.record("success", FAST, 10.0) == "half_open"
    assert breaker.record("success", FAST, 10.0, Permit(True, breaker.epoch)) == "half_open"


def test_a_call_that_started_before_a_state_change_does_not_move_the_breaker() -> None:
    breaker = CircuitBreaker(policy())
    early = breaker.allow(0.0)  # a slow call, still in flight
    feed(breaker, "fff", 1.0)  # meanwhile the breaker opens
    assert breaker.record("success", FAST, 11.0, early) == "half_open"  # not closed by it
    breaker.record("success", FAST, 11.0, breaker.allow(11.0))
    assert breaker.state(11.0) == "closed"
    for _ in range(3):
        breaker.record("failure", FAST, 12.0, early)  # reported late: an older epoch
    assert breaker.state(12.0) == "closed"


def test_a_closed_permit_of_the_current_epoch_counts() -> None:
    breaker = CircuitBreaker(policy())
    permits = [breaker.allow(0.0) for _ in range(3)]
    for permit in permits:
        breaker.record("failure", FAST, 0.0, permit)
    assert breaker.state(0.0) == "open"


# --- policy ------------------------------------------------------------------------------------


def test_the_cool_down_cap_must_not_be_below_the_cool_down() -> None:
    with pytest.raises(ValidationError, match="max_cooldown_s"):
        BreakerPolicy(cooldown_s=60, max_cooldown_s=30)


def test_a_count_window_must_be_able_to_hold_min_calls() -> None:
    with pytest.raises(ValidationError, match="min_calls"):
        BreakerPolicy(window_calls=5, min_calls=6)
    BreakerPolicy(window="time", window_calls=5, min_calls=6)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        BreakerPolicy.model_validate({"failure_treshold": 3})


def test_per_model_and_per_provider_settings_override_the_default() -> None:
    health = ProviderHealthPolicy(
        breakers={"openai": BreakerPolicy(failure_threshold=9)},
        call_timeouts_s={"openai/gpt-4o": 120.0, "anthropic": 30.0},
    )
    assert health.breaker_for("openai/gpt-4o-mini").failure_threshold == 9
    assert health.breaker_for("anthropic/x").failure_threshold == 5
    assert health.call_timeout_for("openai/gpt-4o") == 120.0
    assert health.call_timeout_for("openai/gpt-4o-mini") == 60.0
    assert health.call_timeout_for("anthropic/claude") == 30.0
    with pytest.raises(ValidationError, match="call_timeouts_s"):
        ProviderHealthPolicy(call_timeouts_s={"openai": 0})
