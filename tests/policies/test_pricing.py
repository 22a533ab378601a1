"""Prices: exact costs from the price table, worst-case estimates, unpriced models refused."""

from __future__ import annotations

import pytest

from policies.loader import load_policy
from policies.models import ModelPrice
from policies.pricing import (
    FENCE_PROMPT_CHARS,
    JUDGE_MAX_OUTPUT_TOKENS,
    REPAIR_ECHO_CHARS,
    REPAIR_ERROR_CHARS,
    cost_usd,
    estimate_cost_usd,
    estimate_tokens,
    step_worst_case_usd,
)
from policies.values import Usage
from tether.core.errors import ConfigurationError

PRICES = {
    "simulated/cheap": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60),
    "simulated/strong": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00),
}


@pytest.mark.parametrize(
    ("model", "input_tokens", "output_tokens", "expected_usd"),
    [
        ("simulated/cheap", 1_000_000, 0, 0.15),
        ("simulated/cheap", 0, 1_000_000, 0.60),
        ("simulated/cheap", 1_000, 500, 0.00045),  # 1000 * 0.15e-6 + 500 * 0.60e-6
        ("simulated/strong", 2_000, 1_000, 0.015),  # 2000 * 2.5e-6 + 1000 * 10e-6
        ("simulated/strong", 0, 0, 0.0),
    ],
)
def test_cost_is_tokens_times_price_per_million(
    model: str, input_tokens: int, output_tokens: int, expected_usd: float
) -> None:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    assert cost_usd(PRICES, model, usage) == pytest.approx(expected_usd, rel=1e-12, abs=1e-15)


def test_an_unpriced_model_is_a_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match=r"'openai/gpt-9' has no price"):
        cost_usd(PRICES, "openai/gpt-9", Usage(input_tokens=1))


@pytest.mark.parametrize(
    ("chars", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (8, 2), (4001, 1001)]
)
def test_tokens_are_estimated_at_four_chars_rounded_up(chars: int, tokens: int) -> None:
    assert estimate_tokens(chars) == tokens


def test_estimate_assumes_the_full_output_allowance() -> None:
    # 4000 chars -> 1000 input tokens; 512 output tokens at the worst case.
    expected = (1000 * 2.50 + 512 * 10.00) / 1_000_000
    assert estimate_cost_usd(PRICES, "simulated/strong", 4000, 512) == pytest.approx(expected)
    assert estimate_cost_usd(PRICES, "simulated/strong", 4000, 512) == pytest.approx(0.00762)


def test_default_policy_prices_real_and_simulated_models_alike() -> None:
    prices = load_policy().prices
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    assert cost_usd(prices, "simulated/cheap", usage) == cost_usd(
        prices, "openai/gpt-4o-mini", usage
    )
    assert cost_usd(prices, "simulated/strong", usage) == pytest.approx(0.035)
    assert cost_usd(prices, "anthropic/claude-sonnet-4-5", usage) == pytest.approx(0.045)


def test_a_steps_worst_case_counts_every_call_on_its_own_model() -> None:
    def worst(**overrides: object) -> float:
        args: dict[str, object] = {
            "model_id": "simulated/cheap",
            "input_chars": 4_000,
            "max_output_tokens": 500,
            "max_repairs": 0,
            "samples": 1,
            "judge_model_id": None,
        } | overrides
        return step_worst_case_usd(PRICES, **args)  # type: ignore[arg-type]

    # The prompt also carries the fence around its untrusted variables.
    one = estimate_cost_usd(PRICES, "simulated/cheap", 4_000 + FENCE_PROMPT_CHARS, 500)
    assert worst() == pytest.approx(one)
    # Each repair re-asks with the invalid answer and the error quoted: longer than the last.
    repair_1 = estimate_cost_usd(
        PRICES, "simulated/cheap", 4_000 + REPAIR_ECHO_CHARS + REPAIR_ERROR_CHARS, 500
    )
    assert worst(max_repairs=1) > one + repair_1
    # Samples repeat the last (repaired) request; the judge runs on its own model.
    assert worst(max_repairs=2, samples=3) > 5 * one
    judge = estimate_cost_usd(PRICES, "simulated/strong", 0, JUDGE_MAX_OUTPUT_TOKENS)
    assert worst(judge_model_id="simulated/strong") > one + judge
    with pytest.raises(ConfigurationError):
        worst(judge_model_id="unpriced/model")
