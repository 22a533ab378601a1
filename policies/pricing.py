"""What a model call costs, from the policy's price table (USD per million tokens)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from policies.models import ModelPrice
from policies.values import Usage
from tether.core.errors import ConfigurationError

__all__ = [
    "CHARS_PER_TOKEN",
    "FENCE_PROMPT_CHARS",
    "JUDGE_ANSWER_CHARS",
    "JUDGE_MAX_OUTPUT_TOKENS",
    "JUDGE_TASK_CHARS",
    "REPAIR_ECHO_CHARS",
    "REPAIR_ERROR_CHARS",
    "cost_usd",
    "estimate_cost_usd",
    "estimate_tokens",
    "price_for",
    "step_worst_case_usd",
]

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


REPAIR_ECHO_CHARS = 4_000
"""How much of an invalid answer a repair re-ask quotes back to the model."""
REPAIR_ERROR_CHARS = 1_000
"""How much of the validation error a repair re-ask quotes."""
REPAIR_PROMPT_CHARS = 100
"""The fixed words of a repair re-ask around the error."""
JUDGE_TASK_CHARS = 8_000
"""How much of the step's prompt the judge reads."""
JUDGE_ANSWER_CHARS = 8_000
"""How much of the step's answer the judge reads."""
JUDGE_PROMPT_CHARS = 700
"""The judge's fixed instructions and labels (with the sentence telling it to ignore instructions
in what it grades, and the fence around the answer)."""
FENCE_PROMPT_CHARS = 600
"""What fencing untrusted variables adds to a prompt: the sentence in the system prompt saying
what a fence holds, and the markers around a few variables."""
JUDGE_MAX_OUTPUT_TOKENS = 200


def step_worst_case_usd(
    prices: Mapping[str, ModelPrice],
    *,
    model_id: str,
    input_chars: int,
    max_output_tokens: int,
    max_repairs: int,
    samples: int,
    judge_model_id: str | None,
    judge_calls: int = 1,
) -> float:
    """Estimates the most one LLM step attempt can cost: every call it may make, each on its own
    model and at its own worst case.

    The calls are the main call; up to ``max_repairs`` re-asks, each quoting the invalid answer
    and the error back (so each is longer than the last); ``samples - 1`` self-consistency
    samples of the last request; and ``judge_calls`` judge calls on ``judge_model_id`` (None: no
    judge): the answer's, and the check of a cached answer before its first reuse.

    Raises:
        ConfigurationError: A model has no price.
    """
    if max_repairs < 0 or samples < 1:
        raise ValueError(f"need max_repairs >= 0 and samples >= 1, got {max_repairs}, {samples}")
    repair_chars = REPAIR_ECHO_CHARS + REPAIR_ERROR_CHARS + REPAIR_PROMPT_CHARS
    input_chars += FENCE_PROMPT_CHARS  # the step's prompt fences its untrusted variables
    total = 0.0
    for repair in range(max_repairs + 1):  # the main call, then each re-ask
        chars = input_chars + repair * repair_chars
        total += estimate_cost_usd(prices, model_id, chars, max_output_tokens)
    last_request_chars = input_chars + max_repairs * repair_chars
    sample_cost = estimate_cost_usd(prices, model_id, last_request_chars, max_output_tokens)
    total += (samples - 1) * sample_cost
    if judge_model_id is not None:
        judge_chars = (
            min(input_chars, JUDGE_TASK_CHARS)
            + min(max_output_tokens * CHARS_PER_TOKEN * 2, JUDGE_ANSWER_CHARS)
            + JUDGE_PROMPT_CHARS
        )
        judge_usd = estimate_cost_usd(prices, judge_model_id, judge_chars, JUDGE_MAX_OUTPUT_TOKENS)
        total += max(judge_calls, 0) * judge_usd
    return total
