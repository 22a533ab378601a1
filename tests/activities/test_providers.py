"""The HTTP providers against the local fake of the OpenAI and Anthropic APIs, over loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field, SecretStr

from activities.providers.anthropic import AnthropicProvider
from activities.providers.base import ChatMessage, ChatRequest
from activities.providers.http import classify_http_error, create_http_client, parse_retry_after
from activities.providers.openai_compatible import OpenAICompatibleProvider
from activities.providers.registry import ProviderRegistry
from activities.providers.simulated import SimulatedProvider
from tests.fakes.provider_server import FakeProviderServer
from tether.core.errors import (
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from tether.core.settings import Settings

OPENAI_KEY = "sk-test-openai-key"
ANTHROPIC_KEY = "sk-ant-test-anthropic-key"


class Customer(BaseModel):
    name: str
    email: str | None = None


class TicketTriage(BaseModel):
    category: Literal["billing", "technical", "account"]
    priority: Literal["low", "normal", "high"]
    customer: Customer
    summary: str = Field(max_length=160)
    tags: list[str] = Field(min_length=1)


TICKET = "I was charged twice for my subscription and want a refund. -- Dana"


def triage_request(*, logprobs: bool = False, schema_name: str = "TicketTriage") -> ChatRequest:
    return ChatRequest(
        model="test-model",
        messages=[
            ChatMessage(role="system", content="You triage support tickets."),
            ChatMessage(role="user", content=TICKET),
        ],
        json_schema=TicketTriage.model_json_schema(),
        schema_name=schema_name,
        logprobs=logprobs,
        seed=11,
    )


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(openai_api_key=OPENAI_KEY, anthropic_api_key=ANTHROPIC_KEY) as server:
        yield server


@pytest.fixture
def server(running_server: FakeProviderServer) -> FakeProviderServer:
    running_server.reset()
    return running_server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    client = create_http_client(Settings(provider_timeout_s=5))
    yield client
    await client.aclose()


def openai(
    client: httpx.AsyncClient, server: FakeProviderServer, key: str = OPENAI_KEY
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(client, server.openai_base_url, key)


def anthropic(
    client: httpx.AsyncClient, server: FakeProviderServer, key: str = ANTHROPIC_KEY
) -> AnthropicProvider:
    return AnthropicProvider(client, server.anthropic_base_url, key)


# --- OpenAI-compatible ------------------------------------------------------------------------


async def test_openai_structured_output_is_valid_and_sent_as_json_schema(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    response = await openai(client, server).complete(triage_request())

    TicketTriage.model_validate_json(response.text)
    assert response.provider == "openai" and not response.simulated
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.token_logprobs is None
    assert response.latency_ms > 0
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json["response_format"]["json_schema"]["schema"] == (
        TicketTriage.model_json_schema()
    )
    assert sent.json["max_tokens"] == 512 and sent.json["seed"] == 11
    assert "logprobs" not in sent.json


async def test_openai_logprobs_and_usage_come_from_the_response(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    answer = {
        "category": "billing",
        "priority": "high",
        "customer": {"name": "Dana"},
        "summary": "Double charge, wants a refund.",
        "tags": ["refund"],
    }
    server.script(answer=answer, logprobs=[-0.05, -0.2, -1.5])

    response = await openai(client, server).complete(triage_request(logprobs=True))

    assert json.loads(response.text) == answer
    assert response.token_logprobs == [-0.05, -0.2, -1.5]
    assert response.usage.output_tokens == 3
    assert server.requests[0].json["logprobs"] is True


async def test_openai_schema_name_is_made_acceptable_to_the_api(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    # The real API rejects names outside ^[a-zA-Z0-9_-]{1,64}$; the fake does too.
    response = await openai(client, server).complete(triage_request(schema_name="Ticket triage.v2"))

    TicketTriage.model_validate_json(response.text)
    assert server.requests[0].json["response_format"]["json_schema"]["name"] == "Ticket_triage_v2"


async def test_openai_wrong_key_fails_fast_without_leaking_the_key(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    wrong_key = "sk-wrong-secret-9876"

    with pytest.raises(ProviderRejectedError) as caught:
        await openai(client, server, key=wrong_key).complete(triage_request())

    error = caught.value
    assert not error.retryable and error.status_code == 401
    assert "HTTP 401" in str(error) and "Incorrect API key" in str(error)
    assert wrong_key not in str(error) and "9876" not in str(error)
    assert "\n" not in str(error)


async def test_openai_rate_limit_carries_retry_after(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(status=429, retry_after="2")
    server.script(status=429, retry_after_ms="1500", retry_after="2")
    provider = openai(client, server)

    with pytest.raises(ProviderRateLimitedError) as first:
        await provider.complete(triage_request())
    with pytest.raises(ProviderRateLimitedError) as second:
        await provider.complete(triage_request())

    assert first.value.retryable and first.value.retry_after_s == 2.0
    assert second.value.retry_after_s == 1.5
    assert "Rate limit" in str(first.value)


async def test_openai_server_error_is_retryable_and_not_retried_by_http(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(fail_with=503, times=2)
    provider = openai(client, server)

    for attempt in (1, 2):
        with pytest.raises(ProviderUnavailableError) as caught:
            await provider.complete(triage_request())
        assert caught.value.retryable and caught.value.status_code == 503
        # Temporal owns retries: one failed call is exactly one HTTP request.
        assert len(server.requests) == attempt

    TicketTriage.model_validate_json((await provider.complete(triage_request())).text)


async def test_many_concurrent_calls_share_one_client(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    provider = openai(client, server)

    responses = await asyncio.gather(*(provider.complete(triage_request()) for _ in range(40)))

    assert all(TicketTriage.model_validate_json(r.text) for r in responses)
    assert len(server.requests) == 40


async def test_openai_bad_request_names_the_providers_reason(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(status=400, message="Invalid schema for response_format 'TicketTriage'.")

    with pytest.raises(ProviderRejectedError) as caught:
        await openai(client, server).complete(triage_request())

    assert str(caught.value) == (
        "openai returned HTTP 400: Invalid schema for response_format 'TicketTriage'."
    )
    assert TICKET not in str(caught.value)


async def test_openai_unreadable_body_is_retryable(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(raw_body="<html>upstream hiccup</html>")

    with pytest.raises(ProviderUnavailableError, match="unreadable"):
        await openai(client, server).complete(triage_request())


async def test_connection_refused_is_retryable(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    provider = OpenAICompatibleProvider(client, f"http://127.0.0.1:{closed_port}/v1", OPENAI_KEY)

    with pytest.raises(ProviderUnavailableError) as caught:
        await provider.complete(triage_request())

    assert "connection failed" in str(caught.value) and OPENAI_KEY not in str(caught.value)


async def test_a_stopped_fake_server_refuses_connections(client: httpx.AsyncClient) -> None:
    with FakeProviderServer() as server:
        provider = openai(client, server, key=server.openai_api_key)
        TicketTriage.model_validate_json((await provider.complete(triage_request())).text)

    with pytest.raises(ProviderUnavailableError):
        await provider.complete(triage_request())


async def test_slow_provider_times_out_as_retryable(server: FakeProviderServer) -> None:
    server.script(delay_s=5)
    async with create_http_client(Settings(provider_timeout_s=0.3)) as client:
        with pytest.raises(ProviderUnavailableError, match="timed out"):
            await openai(client, server).complete(triage_request())


# --- Anthropic --------------------------------------------------------------------------------


async def test_anthropic_structured_output_uses_a_forced_tool(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    response = await anthropic(client, server).complete(triage_request(logprobs=True))

    TicketTriage.model_validate_json(response.text)
    assert response.provider == "anthropic" and response.token_logprobs is None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    (sent,) = server.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["system"] == "You triage support tickets."
    assert [m["role"] for m in sent.json["messages"]] == ["user"]
    assert sent.json["tool_choice"] == {"type": "tool", "name": "TicketTriage"}
    assert sent.json["tools"][0]["input_schema"] == TicketTriage.model_json_schema()


async def test_anthropic_returns_the_tool_input_as_json_text(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    answer = {
        "category": "account",
        "priority": "low",
        "customer": {"name": "Dana", "email": None},
        "summary": "Wants to change the account email.",
        "tags": ["account"],
    }
    server.script(answer=answer)

    response = await anthropic(client, server).complete(triage_request())

    assert json.loads(response.text) == answer


async def test_anthropic_plain_text_answer(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(answer="Sorry to hear that, Dana. A refund is on its way.")
    request = ChatRequest(model="claude-test", messages=[ChatMessage(role="user", content=TICKET)])

    response = await anthropic(client, server).complete(request)

    assert response.text == "Sorry to hear that, Dana. A refund is on its way."
    assert "tools" not in server.requests[0].json


async def test_anthropic_wrong_key_fails_fast_without_leaking_the_key(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        await anthropic(client, server, key="sk-ant-wrong-key-4321").complete(triage_request())

    assert caught.value.status_code == 401 and not caught.value.retryable
    assert str(caught.value) == "anthropic returned HTTP 401: invalid x-api-key"


async def test_anthropic_overloaded_and_rate_limited(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(status=529)
    server.script(status=429, retry_after="7")
    provider = anthropic(client, server)

    with pytest.raises(ProviderUnavailableError) as overloaded:
        await provider.complete(triage_request())
    with pytest.raises(ProviderRateLimitedError) as limited:
        await provider.complete(triage_request())

    assert overloaded.value.status_code == 529 and "Overloaded" in str(overloaded.value)
    assert limited.value.retry_after_s == 7.0


async def test_anthropic_unreadable_body_is_retryable(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    server.script(raw_body='{"content": "not a list of blocks"}')

    with pytest.raises(ProviderUnavailableError) as caught:
        await anthropic(client, server).complete(triage_request())

    assert str(caught.value) == "anthropic returned an unreadable message (HTTP 200)"
    assert caught.value.retryable


# --- error classification ---------------------------------------------------------------------


def test_retry_after_accepts_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    headers = httpx.Headers({"retry-after": format_datetime(now + timedelta(seconds=30), True)})

    assert parse_retry_after(headers, now=now) == 30.0
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None


def test_statuses_map_to_retryable_or_not() -> None:
    def classify(status: int) -> type:
        return type(classify_http_error("openai", httpx.Response(status, json={})))

    assert classify(408) is ProviderUnavailableError
    assert classify(409) is ProviderUnavailableError
    assert classify(500) is ProviderUnavailableError
    for status in (400, 401, 403, 404, 422):
        assert classify(status) is ProviderRejectedError


def test_error_messages_never_contain_the_key() -> None:
    body = {"error": {"message": "key sk-live-abcdefgh12345678 is revoked"}}
    error = classify_http_error(
        "openai", httpx.Response(403, json=body), secrets=["sk-live-abcdefgh12345678"]
    )

    assert "abcdefgh" not in str(error) and "revoked" in str(error)


# --- registry ---------------------------------------------------------------------------------


def keyed_settings(server: FakeProviderServer) -> Settings:
    return Settings(
        openai_api_key=SecretStr(OPENAI_KEY),
        openai_base_url=server.openai_base_url,
        anthropic_api_key=SecretStr(ANTHROPIC_KEY),
        anthropic_base_url=server.anthropic_base_url,
        sim_latency_ms=0,
    )


async def test_registry_routes_model_ids_to_working_providers(
    client: httpx.AsyncClient, server: FakeProviderServer
) -> None:
    registry = ProviderRegistry(keyed_settings(server), client)

    for model_id, expected in [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-3-5-haiku-latest", "claude-3-5-haiku-latest"),
        ("simulated/small", "small"),
    ]:
        provider, model = registry.resolve(model_id)
        assert model == expected
        response = await provider.complete(triage_request().model_copy(update={"model": model}))
        TicketTriage.model_validate_json(response.text)

    assert [r.json["model"] for r in server.requests] == [
        "gpt-4o-mini",
        "claude-3-5-haiku-latest",
    ]


def test_registry_keeps_the_model_name_after_the_first_slash(client: httpx.AsyncClient) -> None:
    registry = ProviderRegistry(Settings(openai_api_key=SecretStr("k")), client)

    provider, model = registry.resolve("openai/meta-llama/Llama-3.1-8B-Instruct")

    assert isinstance(provider, OpenAICompatibleProvider)
    assert model == "meta-llama/Llama-3.1-8B-Instruct"
    assert registry.resolve("openai/x")[0] is provider


def test_registry_shares_one_simulated_provider(client: httpx.AsyncClient) -> None:
    registry = ProviderRegistry(Settings(sim_seed=3, sim_quality=0.5), client)

    first, _ = registry.resolve("simulated/cheap")
    second, _ = registry.resolve("simulated/strong")

    assert first is second and isinstance(first, SimulatedProvider)
    assert first.seed == 3 and first.quality == 0.5


def test_registry_refuses_models_it_cannot_call(client: httpx.AsyncClient) -> None:
    registry = ProviderRegistry(Settings(), client)

    with pytest.raises(ProviderRejectedError, match="OPENAI_API_KEY is not set"):
        registry.resolve("openai/gpt-4o-mini")
    with pytest.raises(ProviderRejectedError, match="ANTHROPIC_API_KEY is not set"):
        registry.resolve("anthropic/claude-3-5-haiku-latest")
    with pytest.raises(ProviderRejectedError, match="unknown model provider 'mistral'"):
        registry.resolve("mistral/large")
    with pytest.raises(ProviderRejectedError, match="must look like provider/model"):
        registry.resolve("gpt-4o-mini")
    assert not registry.available("openai/gpt-4o-mini")
    assert not registry.available("mistral/large")
    assert registry.available("simulated/anything")
    assert ProviderRegistry(Settings(openai_api_key=SecretStr("k")), client).available(
        "openai/gpt-4o-mini"
    )
