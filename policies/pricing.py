"""What a model call costs, from the policy's price table (USD per million tokens)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from policies.models import ModelPrice
from policies.values import Usage
from tether.core.errors import ConfigurationError

__all__ = ["CHARS_PER_TOKEN", "cost_usd", "estimate_cost_usd", "estimate_tokens", "price_for"]

CHARS_PER_TOKEN = 4
"""A simple, provider-neutral estimate: budgets only need the right order of magnitude."""

_TOKENS_PER_PRICE_UNIT = 1_000_000


def price_for(prices: Mapping[str, ModelPrice], model_id: str) -> ModelPrice:
    """Returns the price of ``model_id``.

    Raises:
        ConfigurationError: The model has no price. Every model used must be priced: an unpriced
            model would be a silent hole in every budget.
    """
    price = prices.get(model_id)
    if price is None:
        raise ConfigurationError(
            f"model {model_id!r} has no price: add it under 'prices' in the policy file "
            "(every model used must be priced, or budgets cannot count it)"
        )
    return price


def cost_usd(prices: Mapping[str, ModelPrice], model_id: str, usage: Usage) -> float:
    """Returns the USD cost of ``usage`` tokens on ``model_id``.

    Raises:
        ConfigurationError: ``model_id`` has no price.
    """
    price = price_for(prices, model_id)
    return (
        usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok
    ) / _TOKENS_PER_PRICE_UNIT


def estimate_tokens(chars: int) -> int:
    """Estimates the tokens in ``chars`` characters of text (about 4 per token, rounded up)."""
    if chars < 0:
        raise ValueError(f"chars must be >= 0, got {chars}")
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_cost_usd(
    prices: Mapping[str, ModelPrice], model_id: str, input_chars: int, max_output_tokens: int
) -> float:
    """Estimates the worst-case cost of one call: the whole input plus ``max_output_tokens`` out.

    A checkpoint reserves this before the call, so the worst case is the honest figure: a
    budget must not be exceeded by an answer that happened to be long.

    Raises:
        ConfigurationError: ``model_id`` has no price.
    """
    if max_output_tokens < 0:
        raise ValueError(f"max_output_tokens must be >= 0, got {max_output_tokens}")
    usage = Usage(input_tokens=estimate_tokens(input_chars), output_tokens=max_output_tokens)
    return cost_usd(prices, model_id, usage)
