"""The rate-limit rule: which window holds a step back, and how the policy file reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.effective import effective_for
from policies.limits import LimitsPolicy, LimitWindow, ProviderCap, WindowCount, first_breach
from policies.loader import load_policy
from policies.models import WorkflowPolicy

MINUTE = LimitWindow(seconds=60, requests=10, tokens=1000)
DAY = LimitWindow(seconds=86_400, requests=100)


def count(window: LimitWindow, requests: int, tokens: int = 0, scope: str = "user") -> WindowCount:
    return WindowCount(scope, "u1", window, 0.0, requests, tokens)  # type: ignore[arg-type]


def test_a_step_fits_until_a_window_is_full() -> None:
    assert first_breach([count(MINUTE, 9, 500)], tokens=500) is None
    assert first_breach([count(MINUTE, 10)], tokens=1) is not None
    assert first_breach([count(MINUTE, 1, 600)], tokens=500) is not None  # tokens over


def test_the_breach_named_is_the_one_that_resets_last() -> None:
    breach = first_breach([count(MINUTE, 10), count(DAY, 100)], tokens=1)
    assert breach is not None and breach.window == DAY and breach.resets_at == 86_400
    assert breach.describe() == "user u1: 100 requests per day"


def test_an_empty_window_takes_one_step_larger_than_it() -> None:
    assert first_breach([count(MINUTE, 0, 0)], tokens=5000) is None


def test_a_provider_window_counts_every_call_of_the_step() -> None:
    cap = LimitWindow(seconds=60, requests=4)
    assert first_breach([count(cap, 2, scope="provider")], tokens=1, provider_calls=2) is None
    assert first_breach([count(cap, 3, scope="provider")], tokens=1, provider_calls=2) is not None
    # A user's window counts the step once, however many calls it makes.
    assert first_breach([count(cap, 3)], tokens=1, provider_calls=2) is None


def test_provider_caps_scale_to_their_window() -> None:
    assert ProviderCap(requests_per_minute=60, window_seconds=2).window() == LimitWindow(
        seconds=2, requests=2
    )
    assert ProviderCap(
        requests_per_minute=10, tokens_per_minute=90_000, window_seconds=1
    ).window() == (LimitWindow(seconds=1, requests=1, tokens=1500))
    assert ProviderCap().window() is None


def test_a_window_must_limit_something() -> None:
    with pytest.raises(ValidationError, match="limits requests, tokens or both"):
        LimitWindow(seconds=60)
    with pytest.raises(ValidationError):
        LimitsPolicy.model_validate({"on_exceed": "ignore"})


def test_the_default_policy_limits_users_and_tenants_and_caps_providers() -> None:
    policy = load_policy()
    assert policy.limits.enabled and policy.limits.on_exceed == "wait"
    assert policy.limits.per_user and policy.limits.per_tenant
    assert {"openai", "anthropic"} <= set(policy.limits.providers)


def test_a_workflow_overrides_the_outcome_and_keeps_the_windows() -> None:
    policy = load_policy()
    override = WorkflowPolicy(limits=LimitsPolicy(on_exceed="refuse"))
    changed = policy.model_copy(update={"workflows": policy.workflows | {"wf": override}})
    limits = effective_for(changed, "wf").limits
    assert limits.on_exceed == "refuse"
    assert limits.per_user == policy.limits.per_user
