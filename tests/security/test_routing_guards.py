"""Hostile input against the routing guards: user text must not stall a worker or leak.

Routing features run on every step's rendered input, which is user text, so each pattern must
stay linear on adversarial input (a backtracking regex would let one ticket pin a worker's CPU
for minutes), and the recorded reason must carry no part of the input.
"""

from __future__ import annotations

import time

import pytest

from activities.provider_health import ProviderHealth
from policies.guard_routing import BreakerPolicy, ProviderHealthPolicy, RouteRulesPolicy
from policies.route_features import RouteRequest, input_features
from policies.route_rules import choose_tier
from tether.core.errors import ProviderRateLimitedError, ProviderRejectedError

SIZE = 100_000
HOSTILE = {
    "dashed words": "a-" * (SIZE // 2),
    "dotted words": "a." * (SIZE // 2),
    "fence openers": "```\n" * (SIZE // 4),
    "unclosed brackets": "[attachment " * (SIZE // 12),
    "unclosed tags": "<div " * (SIZE // 5),
    "unclosed parens": "def f(" + ")" * SIZE,
    "stack frames": "  at " + "a." * (SIZE // 2),
    "backticks": "`a" * (SIZE // 2),
    "select without from": "SELECT " * (SIZE // 7),
    "url schemes": "http://" * (SIZE // 7),
    "semicolons and spaces": ";" + " " * SIZE + "x",
    "import chain": "import " + "a." * (SIZE // 2) + " x",
    "question marks": "?" * SIZE,
    "mixed scripts": "a\u0416\u4e2d\u0627" * (SIZE // 4),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_features_of_hostile_text_take_linear_time(text: str) -> None:
    started = time.perf_counter()
    input_features(text)
    assert time.perf_counter() - started < 5.0  # ~0.5 s on a loaded CI box; minutes if quadratic


def test_the_recorded_reason_carries_nothing_of_the_input() -> None:
    text = (
        "My card 4111 1111 1111 1111, mail jane.doe@example.com, SECRET-TOKEN-123?\n```\nx = 1\n```"
    )
    rules = RouteRulesPolicy.model_validate(
        {"rules": [{"when": {"has_code": True, "min_questions": 1}, "tier": "strong"}]}
    )
    decision = choose_tier(rules, RouteRequest(features=input_features(text), tenant="acme"))
    assert decision.tier == "strong"
    for secret in ("4111", "jane", "example.com", "SECRET", "x = 1"):
        assert secret not in decision.reason
        assert secret not in decision.model_dump_json()


@pytest.mark.parametrize(
    "error",
    [
        ProviderRejectedError("400 bad request", provider="openai", status_code=400),
        ProviderRejectedError("401", provider="openai", status_code=401),
        ProviderRateLimitedError("429", provider="openai"),
    ],
)
def test_a_user_cannot_open_the_breaker_for_everyone_with_bad_requests(
    error: BaseException,
) -> None:
    """Requests a user can make fail at will (oversized, malformed, over a rate limit) say
    nothing about the provider's health, so they must not take the model away from others."""
    registry = ProviderHealth(ProviderHealthPolicy(breaker=BreakerPolicy(failure_threshold=2)))
    for _ in range(50):
        registry.record("openai/gpt-4o", error, 0.05, registry.acquire("openai/gpt-4o"))
    assert not registry.should_skip("openai/gpt-4o")
    assert registry.state("openai/gpt-4o") == "closed"
