"""The simulated provider: reproducible, schema-valid, and misbehaving only as configured."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from activities.providers import simulated as simulated_module
from activities.providers.base import ChatMessage, ChatRequest, ChatResponse
from activities.providers.simulated import REPAIR_PREFIX, SimulatedProvider
from tether.core.errors import ProviderUnavailableError


class Customer(BaseModel):
    name: str = Field(min_length=2, max_length=40)
    email: str | None = None
    tier: Literal["free", "pro", "enterprise"] = "free"


class TicketTriage(BaseModel):
    category: Literal["billing", "technical", "account", "shipping"]
    priority: Literal["low", "normal", "high"]
    customer: Customer
    summary: str = Field(max_length=120)
    reply_draft: str = Field(min_length=40, max_length=600)
    confidence: float = Field(ge=0, le=1)
    tags: list[str] = Field(min_length=1, max_length=5)
    needs_human: bool
    order_id: str | None = None


class LineItem(BaseModel):
    description: str
    quantity: int = Field(ge=1, le=100)
    unit_price: float = Field(gt=0, le=10_000)


class InvoiceExtraction(BaseModel):
    kind: Literal["invoice"] = "invoice"
    vendor: str
    issued_on: date
    currency: Literal["USD", "EUR", "GBP"]
    items: list[LineItem] = Field(min_length=1)
    discount_percent: int | None = Field(default=None, ge=0, le=50)


class Section(BaseModel):
    title: str
    subsections: list[Section] = Field(default_factory=list)


class Outline(BaseModel):
    sections: list[Section] = Field(min_length=2)


TICKETS = [
    "I was charged twice this month and want a refund for the duplicate payment.",
    "The app crashes with an error every time I open the reports page.",
    "I cannot log in: my password reset email never arrives.",
    "Where is my package? Tracking has not moved for a week.",
]


def request_for(
    model: type[BaseModel], text: str, *, logprobs: bool = False, extra: str = ""
) -> ChatRequest:
    messages = [
        ChatMessage(role="system", content="Answer with JSON."),
        ChatMessage(role="user", content=text),
    ]
    if extra:
        messages += [
            ChatMessage(role="assistant", content="{"),
            ChatMessage(role="user", content=extra),
        ]
    return ChatRequest(
        model="sim-small",
        messages=messages,
        json_schema=model.model_json_schema(),
        schema_name=model.__name__,
        logprobs=logprobs,
    )


async def outcomes(provider: SimulatedProvider, requests: list[ChatRequest]) -> list[str]:
    results = []
    for request in requests:
        try:
            response = await provider.complete(request)
        except ProviderUnavailableError:
            results.append("failed")
        else:
            results.append(f"{response.text}|{response.token_logprobs}")
    return results


def mean(values: list[float] | None) -> float:
    assert values
    return sum(values) / len(values)


def valid(model: type[BaseModel], response: ChatResponse) -> bool:
    try:
        model.model_validate_json(response.text)
    except ValidationError:
        return False
    return True


async def test_same_seed_replays_the_same_sequence() -> None:
    requests = [request_for(TicketTriage, text, logprobs=True) for text in TICKETS] * 3

    def simulated(seed: int) -> SimulatedProvider:
        return SimulatedProvider(latency_ms=0, failure_rate=0.3, quality=0.6, seed=seed)

    first = await outcomes(simulated(seed=42), requests)
    again = await outcomes(simulated(seed=42), requests)
    other = await outcomes(simulated(seed=43), requests)

    assert first == again
    assert first != other
    assert "failed" in first and any(o != "failed" for o in first)


@pytest.mark.parametrize("model", [TicketTriage, InvoiceExtraction, Outline])
async def test_full_quality_answers_always_validate(model: type[BaseModel]) -> None:
    provider = SimulatedProvider(latency_ms=0, quality=1.0, seed=5)

    for index in range(25):
        response = await provider.complete(request_for(model, f"#{index} {TICKETS[index % 4]}"))
        model.model_validate_json(response.text)


async def test_low_quality_gives_some_invalid_answers_and_repairs_fix_them() -> None:
    provider = SimulatedProvider(latency_ms=0, quality=0.0, seed=5)
    repair = f"{REPAIR_PREFIX}: field required. Answer again with valid JSON only."

    firsts = [
        await provider.complete(request_for(TicketTriage, f"{i} {TICKETS[0]}")) for i in range(40)
    ]
    repairs = [
        await provider.complete(request_for(TicketTriage, f"{i} {TICKETS[0]}", extra=repair))
        for i in range(40)
    ]

    invalid = sum(not valid(TicketTriage, response) for response in firsts)
    assert 8 <= invalid <= 32  # about half, at quality 0
    assert all(valid(TicketTriage, response) for response in repairs)


async def test_failure_rate_one_always_fails() -> None:
    provider = SimulatedProvider(latency_ms=0, failure_rate=1.0, seed=1)

    for _ in range(10):
        with pytest.raises(ProviderUnavailableError, match="simulated provider failure") as caught:
            await provider.complete(request_for(TicketTriage, TICKETS[0]))
        assert caught.value.retryable and caught.value.provider == "simulated"


async def test_a_retried_request_gets_through_after_simulated_failures() -> None:
    provider = SimulatedProvider(latency_ms=0, failure_rate=0.5, seed=9)
    request = request_for(TicketTriage, TICKETS[1])

    results = await outcomes(provider, [request] * 12)

    assert "failed" in results and any(r != "failed" for r in results)


async def test_enums_follow_what_the_ticket_is_about() -> None:
    provider = SimulatedProvider(latency_ms=0, quality=0.9, seed=2)
    expected = ["billing", "technical", "account", "shipping"]

    hits = 0
    for index in range(20):
        for text, category in zip(TICKETS, expected, strict=True):
            response = await provider.complete(request_for(TicketTriage, f"{text} (#{index})"))
            # Read the field from the raw text: some answers at this quality are truncated.
            hits += f'"category": "{category}"' in response.text
    assert hits >= 0.8 * 80


async def test_text_fields_quote_the_ticket() -> None:
    provider = SimulatedProvider(latency_ms=0, quality=1.0, seed=4)

    answer = json.loads((await provider.complete(request_for(TicketTriage, TICKETS[3]))).text)

    quoted = answer["reply_draft"].split('"')[1]
    assert quoted and quoted in TICKETS[3]


async def test_logprobs_track_quality_and_some_answers_are_unsure() -> None:
    async def mean_confidences(quality: float) -> list[float]:
        provider = SimulatedProvider(latency_ms=0, quality=quality, seed=8)
        values = []
        for index in range(60):
            request = request_for(TicketTriage, f"{index} {TICKETS[index % 4]}", logprobs=True)
            response = await provider.complete(request)
            assert response.token_logprobs and all(lp <= 0 for lp in response.token_logprobs)
            assert len(response.token_logprobs) == response.usage.output_tokens
            values.append(math.exp(mean(response.token_logprobs)))
        return values

    good = await mean_confidences(0.9)
    poor = await mean_confidences(0.4)

    assert sum(good) / len(good) > sum(poor) / len(poor) + 0.3
    assert 0.75 < sorted(good)[len(good) // 2] < 0.98  # the median sits near the quality
    assert any(value < 0.5 for value in good)  # a few unsure answers land in review


async def test_no_logprobs_unless_asked() -> None:
    provider = SimulatedProvider(latency_ms=0, seed=1)

    response = await provider.complete(request_for(TicketTriage, TICKETS[0]))

    assert response.token_logprobs is None


async def test_response_describes_itself_as_simulated() -> None:
    provider = SimulatedProvider(latency_ms=0, quality=1.0, seed=1)
    request = request_for(InvoiceExtraction, "Invoice from ACME Corp, 3 widgets at 12.50 EUR")

    response = await provider.complete(request)

    assert response.provider == "simulated" and response.simulated
    assert response.model == "sim-small"
    chars = sum(len(m.content) for m in request.messages)
    assert response.usage.input_tokens == math.ceil(chars / 4)
    assert response.usage.output_tokens == math.ceil(len(response.text) / 4)


async def test_plain_text_without_a_schema() -> None:
    provider = SimulatedProvider(latency_ms=0, seed=1)
    request = ChatRequest(
        model="sim", messages=[ChatMessage(role="user", content="Summarise the outage report")]
    )

    response = await provider.complete(request)

    assert response.text and not response.text.startswith("{")


async def test_latency_is_simulated_by_awaiting_the_configured_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No clock: the provider must ask to wait about latency_ms (jitter of +-20%), and not at all
    # when latency is off. The sleep is recorded instead of waited for.
    waits: list[float] = []

    async def recorded_sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(simulated_module.asyncio, "sleep", recorded_sleep)
    slow = SimulatedProvider(latency_ms=200, seed=1)
    instant = SimulatedProvider(latency_ms=0, seed=1)

    for text in TICKETS:
        await slow.complete(request_for(TicketTriage, text))
    assert len(waits) == len(TICKETS)
    assert all(0.16 <= wait <= 0.24 for wait in waits), waits
    assert len(set(waits)) > 1, "the delay is jittered per call"

    waits.clear()
    for text in TICKETS:
        await instant.complete(request_for(TicketTriage, text))
    assert waits == []
