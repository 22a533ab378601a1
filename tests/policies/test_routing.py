"""Routing: fallback chains by tier, skipping models without credentials, and downgrades."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policies.loader import load_policy
from policies.models import RoutingPolicy
from policies.routing import TierChoice, downgrade_for, resolve_tier, route_model

ROUTING = load_policy().routing


def keys(*providers: str) -> Callable[[str], bool]:
    """Availability as the worker sees it: providers with an API key, plus the simulator."""
    usable = {*providers, "simulated"}
    return lambda model: model.split("/", 1)[0] in usable


@pytest.mark.parametrize(
    ("tier", "input_chars", "available", "chain"),
    [
        (
            "cheap",
            10,
            keys("openai", "anthropic"),
            ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"],
        ),
        (
            "strong",
            10,
            keys("openai", "anthropic"),
            ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"],
        ),
        ("cheap", 10, keys("anthropic"), ["anthropic/claude-haiku-4-5"]),
        ("strong", 10, keys("openai"), ["openai/gpt-4o"]),
        ("cheap", 10, keys(), ["simulated/cheap"]),
        ("strong", 10, keys(), ["simulated/strong"]),
        ("auto", 4000, keys(), ["simulated/cheap"]),
        ("auto", 4001, keys(), ["simulated/strong"]),
        ("auto", 4001, keys("openai"), ["openai/gpt-4o"]),
    ],
)
def test_route(
    tier: TierChoice, input_chars: int, available: Callable[[str], bool], chain: list[str]
) -> None:
    assert route_model(ROUTING, tier, input_chars, available) == chain


def test_auto_uses_the_complex_input_threshold() -> None:
    routing = RoutingPolicy(complex_input_chars=100)
    assert resolve_tier(routing, "auto", 100) == "cheap"
    assert resolve_tier(routing, "auto", 101) == "strong"
    assert resolve_tier(routing, "cheap", 10**6) == "cheap"


def test_a_tier_missing_from_the_policy_falls_back_to_simulated() -> None:
    routing = RoutingPolicy(tiers={"cheap": ["openai/gpt-4o-mini"]})
    assert route_model(routing, "strong", 0, keys("openai")) == ["simulated/strong"]


@pytest.mark.parametrize(
    ("model", "available", "expected"),
    [
        ("openai/gpt-4o", keys("openai", "anthropic"), "openai/gpt-4o-mini"),  # explicit map
        ("anthropic/claude-sonnet-4-5", keys("anthropic"), "anthropic/claude-haiku-4-5"),
        # The mapped model has no key: the first available cheap model instead.
        ("openai/gpt-4o", keys("anthropic"), "anthropic/claude-haiku-4-5"),
        # Nothing cheaper and real: never swap real answers for simulated ones.
        ("openai/gpt-4o", keys(), None),
        ("simulated/strong", keys(), "simulated/cheap"),
        ("openai/gpt-4o-mini", keys("openai"), None),  # already cheap
        ("other/unknown", keys("other"), None),
    ],
)
def test_downgrade(model: str, available: Callable[[str], bool], expected: str | None) -> None:
    assert downgrade_for(ROUTING, model, available) == expected


def test_downgrade_without_explicit_map_uses_the_cheap_tier() -> None:
    routing = RoutingPolicy(
        tiers={"cheap": ["b/small", "a/small"], "strong": ["a/large"]}, downgrade={}
    )
    assert downgrade_for(routing, "a/large") == "b/small"
    assert downgrade_for(routing, "a/large", keys("a")) == "a/small"


def test_a_real_model_is_never_downgraded_to_a_simulated_one() -> None:
    routing = RoutingPolicy(
        tiers={"cheap": ["simulated/cheap", "openai/gpt-4o-mini"], "strong": ["openai/gpt-4o"]},
        downgrade={},
    )
    assert downgrade_for(routing, "openai/gpt-4o", keys("openai")) == "openai/gpt-4o-mini"
    assert downgrade_for(routing, "openai/gpt-4o", keys()) is None
