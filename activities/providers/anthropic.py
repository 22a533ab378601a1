"""Claude models over Anthropic's Messages API, with structured output through a forced tool."""

from __future__ import annotations

import json
from typing import Any

import httpx

from activities.providers.base import ChatRequest, ChatResponse
from activities.providers.http import ProviderEndpoint, wire_name
from policies.values import Usage

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider:
    """A ``ChatProvider`` for ``POST {base_url}/v1/messages``.

    Structured output forces a single tool whose input schema is the requested JSON schema;
    the tool call's ``input`` is returned as JSON text so callers validate it like any other
    answer. Anthropic returns no logprobs.

    Args:
        client: The worker's shared HTTP client.
        base_url: API root without the version, e.g. ``https://api.anthropic.com``.
        api_key: Sent in the ``x-api-key`` header.
    """

    name = "anthropic"
    simulated = False

    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self._headers = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
        self._endpoint = ProviderEndpoint(
            self.name, client, base_url.rstrip("/") + "/v1/messages", api_key
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        reply = await self._endpoint.post(_request_body(request), self._headers)
        structured = request.json_schema is not None
        text, usage = reply.read("message", lambda body: _read_message(body, structured))
        return ChatResponse(
            text=text,
            usage=usage,
            model=request.model,
            provider=self.name,
            token_logprobs=None,
            latency_ms=reply.latency_ms,
        )


def _request_body(request: ChatRequest) -> dict[str, Any]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_output_tokens,
        # The Messages API allows temperature in [0, 1] only.
        "temperature": min(request.temperature, 1.0),
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
    }
    if system:
        body["system"] = system
    if request.json_schema is not None:
        tool = wire_name(request.schema_name)
        body["tools"] = [
            {
                "name": tool,
                "description": f"Record the answer as a {tool} object matching the schema.",
                "input_schema": request.json_schema,
            }
        ]
        body["tool_choice"] = {"type": "tool", "name": tool}
    return body


def _read_message(body: Any, structured: bool) -> tuple[str, Usage]:
    """The answer's text and the usage the API reports."""
    usage = body.get("usage") or {}
    return _answer_text(body["content"], structured=structured), Usage(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
    )


def _answer_text(content: list[dict[str, Any]], *, structured: bool) -> str:
    if structured:
        for block in content:
            if block.get("type") == "tool_use":
                return json.dumps(block["input"], ensure_ascii=False)
    # Without a tool call (or when one was asked for but the answer stopped early) the text
    # blocks are the answer; schema validation then judges them.
    return "".join(str(block.get("text", "")) for block in content if block.get("type") == "text")
