"""Embedders for the semantic cache and the learned routing rule: text in, unit vectors out.

Two implementations: :class:`ProviderEmbedder` (the configured provider's OpenAI-compatible
``POST /v1/embeddings``) and :class:`MiniLmEmbedder` (all-MiniLM-L6-v2 offline, the
``embeddings`` extra). Vectors are L2-normalised float32 rows, so a dot product is the cosine.
"""

from __future__ import annotations

from typing import Protocol

from activities.embeddings.minilm import MiniLmEmbedder, Vectors, minilm_available, shared_minilm
from activities.embeddings.provider import ProviderEmbedder

__all__ = [
    "Embedder",
    "MiniLmEmbedder",
    "ProviderEmbedder",
    "Vectors",
    "minilm_available",
    "shared_minilm",
]


class Embedder(Protocol):
    """Turns texts into unit vectors; ``name`` keys the cache (vectors of two models never mix)."""

    name: str

    async def embed(self, texts: list[str]) -> Vectors: ...
