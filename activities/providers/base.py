"""The provider interface every model backend implements."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from policies.values import Usage

REPAIR_PREFIX = "Your previous answer was invalid"
"""How the LLM step starts the user message that asks the model to fix an invalid answer; the
simulated provider recognises it, as a real model would follow it."""


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """One model call. ``model`` is the provider's own model name (no ``provider/`` prefix)."""

    model: str
    messages: list[ChatMessage]
    json_schema: dict[str, Any] | None = None
    """When set, ask for JSON output matching this schema (structured output)."""
    schema_name: str = "output"
    max_output_tokens: int = Field(default=512, gt=0)
    temperature: float = Field(default=0.0, ge=0, le=2)
    logprobs: bool = False
    seed: int | None = None


class ChatResponse(BaseModel):
    text: str
    usage: Usage
    model: str
    provider: str
    simulated: bool = False
    token_logprobs: list[float] | None = None
    """Per-token log-probabilities of the answer, when asked for and returned."""
    latency_ms: float = 0.0


class ChatProvider(Protocol):
    """A model backend. Implementations raise ``tether.core.errors.ProviderError`` subclasses."""

    name: str
    simulated: bool

    async def complete(self, request: ChatRequest) -> ChatResponse: ...
