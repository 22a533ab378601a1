"""Chat completions over the OpenAI wire format (OpenAI, vLLM, Ollama, LiteLLM, ...)."""

from __future__ import annotations

from typing import Any

import httpx

from activities.providers.base import ChatRequest, ChatResponse
from activities.providers.http import ProviderEndpoint, wire_name
from policies.values import Usage

__all__ = ["OpenAICompatibleProvider"]


class OpenAICompatibleProvider:
    """A ``ChatProvider`` for ``POST {base_url}/chat/completions``.

    Args:
        client: The worker's shared HTTP client.
        base_url: API root including the version, e.g. ``https://api.openai.com/v1``.
        api_key: Sent as a bearer token; an empty key sends no Authorization header (local
            servers such as Ollama need none).
        name: Provider name reported in responses, errors and the cost ledger.
    """

    simulated = False

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, api_key: str, name: str = "openai"
    ) -> None:
        self.name = name
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._endpoint = ProviderEndpoint(
            name, client, base_url.rstrip("/") + "/chat/completions", api_key
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        reply = await self._endpoint.post(_request_body(request), self._headers)
        text, choice, usage = reply.read("chat completion", _read_completion)
        return ChatResponse(
            text=text,
            usage=usage,
            # The requested name, not the dated snapshot the API echoes: prices key on it.
            model=request.model,
            provider=self.name,
            token_logprobs=_token_logprobs(choice) if request.logprobs else None,
            latency_ms=reply.latency_ms,
        )


def _request_body(request: ChatRequest) -> dict[str, Any]:
    # max_tokens rather than max_completion_tokens: vLLM, Ollama and LiteLLM all accept it.
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_output_tokens,
        "temperature": request.temperature,
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": wire_name(request.schema_name),
                "schema": request.json_schema,
                # strict mode rejects common pydantic schemas (defaults, optional fields).
                "strict": False,
            },
        }
    if request.logprobs:
        body["logprobs"] = True
    return body


def _read_completion(body: Any) -> tuple[str, dict[str, Any], Usage]:
    """The answer's text, its choice (for logprobs) and the usage the API reports."""
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    return (
        _message_text(choice["message"]),
        choice,
        Usage(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        ),
    )


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        # Some gateways return content parts instead of one string.
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    if isinstance(content, str) and content:
        return content
    # A refusal comes instead of content; passing it on as the answer lets schema validation
    # and review handle it like any other unusable output.
    refusal = message.get("refusal")
    return refusal if isinstance(refusal, str) else ""


def _token_logprobs(choice: dict[str, Any]) -> list[float] | None:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    values = [
        float(token["logprob"])
        for token in content
        if isinstance(token, dict) and isinstance(token.get("logprob"), int | float)
    ]
    return values or None
