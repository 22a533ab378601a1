"""Embeddings from the configured provider's OpenAI-compatible ``POST {base_url}/embeddings``,
with the input tokens its ``usage`` says it bills."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from activities.embeddings.minilm import Embedded, Vectors
from activities.providers.http import ProviderEndpoint
from policies.pricing import estimate_tokens

__all__ = ["ProviderEmbedder"]

_BATCH = 256  # well under the API's 2,048 inputs per request


class ProviderEmbedder:
    """Asks the provider for embeddings, through the worker's shared HTTP client.

    Args:
        client: The worker's shared HTTP client.
        base_url: API root including the version, e.g. ``https://api.openai.com/v1``.
        api_key: Sent as a bearer token (none when empty).
        model: The provider's embedding model, e.g. ``text-embedding-3-small``.
        provider: Provider name for errors.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        model: str,
        provider: str = "openai",
    ) -> None:
        self.name = f"{provider}/{model}"
        self.billed = True
        self._model = model
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._endpoint = ProviderEndpoint(
            provider, client, base_url.rstrip("/") + "/embeddings", api_key
        )

    async def embed(self, texts: list[str]) -> Embedded:
        rows: list[Vectors] = []
        tokens = 0
        for start in range(0, len(texts), _BATCH):
            chunk = texts[start : start + _BATCH]
            body = {"model": self._model, "input": chunk, "encoding_format": "float"}
            reply = await self._endpoint.post(body, self._headers)
            vectors, billed = reply.read("embedding list", _reader(chunk))
            rows.append(vectors)
            tokens += billed
        if not rows:
            return Embedded(np.zeros((0, 0), dtype=np.float32))
        return Embedded(np.concatenate(rows), billed_tokens=tokens)


def _reader(chunk: list[str]) -> Callable[[Any], tuple[Vectors, int]]:
    return lambda body: (_vectors(body, len(chunk)), _billed_tokens(body, chunk))


def _billed_tokens(body: Any, chunk: list[str]) -> int:
    """``usage.prompt_tokens``; a provider that leaves it out is charged an estimate (it bills)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
        return tokens
    return estimate_tokens(sum(len(text) for text in chunk))


def _vectors(body: Any, expected: int) -> Vectors:
    """The ``data`` items in input order (the API gives each an ``index``), L2-normalised."""
    items = sorted(body["data"], key=lambda item: int(item["index"]))
    if len(items) != expected:
        raise ValueError(f"{len(items)} embeddings for {expected} inputs")
    matrix = np.asarray([item["embedding"] for item in items], dtype=np.float32)
    norms = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return (matrix / norms).astype(np.float32)
