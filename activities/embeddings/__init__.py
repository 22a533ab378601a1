"""Embedders for the semantic cache and the learned routing rule: text in, unit vectors out.

Two implementations: :class:`ProviderEmbedder` (the configured provider's OpenAI-compatible
``POST /v1/embeddings``, billed per input token) and :class:`MiniLmEmbedder` (all-MiniLM-L6-v2
offline, the ``embeddings`` extra, free). Vectors are L2-normalised float32 rows, so a dot
product is the cosine.
"""

from __future__ import annotations

from typing import Protocol

from activities.embeddings.minilm import (
    Embedded,
    MiniLmEmbedder,
    Vectors,
    minilm_available,
    shared_minilm,
)
from activities.embeddings.provider import ProviderEmbedder

__all__ = [
    "Embedded",
    "Embedder",
    "EmbeddingCalls",
    "MiniLmEmbedder",
    "ProviderEmbedder",
    "Vectors",
    "minilm_available",
    "shared_minilm",
]


class Embedder(Protocol):
    """Turns texts into unit vectors; ``name`` keys the cache (vectors of two models never mix)
    and, for a ``billed`` embedder, prices the tokens it reports."""

    name: str
    billed: bool

    async def embed(self, texts: list[str]) -> Embedded: ...


class EmbeddingCalls(Protocol):
    """Where a step's billed embedding calls are written down (its call log, the ledger)."""

    async def embedding_call(
        self, model_id: str, billed_tokens: int, started: float, error: str | None
    ) -> None:
        """Record one call to ``model_id``; ``started`` is its ``time.perf_counter()`` start."""
        ...
