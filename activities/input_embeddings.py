"""The inputs' embeddings the step cache and the learned routing rule use: the policy's
embedder (built once per worker), the latest texts' vectors remembered, and every call to a
billed embedder written to the step's call log, whatever became of it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import numpy as np

from activities.deps import ActivityDeps
from activities.embeddings import (
    Embedder,
    EmbeddingCalls,
    ProviderEmbedder,
    minilm_available,
    shared_minilm,
)
from activities.providers.http import may_have_been_billed
from policies.pricing import estimate_tokens
from tether.core.errors import ProviderError

__all__ = ["InputEmbeddings"]

log = logging.getLogger(__name__)

_RECENT_TEXTS = 64
"""Embeddings kept per worker for texts asked about again within a step."""


class InputEmbeddings:
    """One worker's embedder for step inputs (built with its step cache)."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps
        self.policy = deps.policy.cache
        self._embedder: Embedder | None = None
        self._embedder_ready = False
        # The latest texts embedded: the learned routing rule and the lookup of one step embed
        # the same input, once.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def embedder(self) -> Embedder | None:
        """The policy's embedder; None when semantic lookup is off or cannot run here."""
        if not self._embedder_ready:
            self._embedder_ready = True
            if self.policy.semantic:
                self._embedder = self._build_embedder()
        return self._embedder

    def _build_embedder(self) -> Embedder | None:
        if self.policy.embedder == "local":
            if minilm_available():
                return shared_minilm()
            log.warning("semantic cache off: the local embedder needs tether[embeddings]")
            return None
        provider, _, model = self.policy.embedding_model.partition("/")
        settings = self.deps.settings
        if provider != "openai" or settings.openai_api_key is None:
            log.warning("semantic cache off: embeddings need OPENAI_API_KEY (openai/...)")
            return None
        return ProviderEmbedder(
            self.deps.providers.client,
            settings.openai_base_url,
            settings.openai_api_key.get_secret_value(),
            model,
        )

    async def vector(self, text: str, calls: EmbeddingCalls | None) -> np.ndarray | None:
        """``text``'s vector; a billed embedder's call is written to ``calls`` (the step's call
        log), failed or not. None when there is no embedder or the call failed."""
        embedder = self.embedder()
        if embedder is None or not text:
            return None
        if (known := self._recent.get(text)) is not None:
            return known
        started = time.perf_counter()
        billed = calls if embedder.billed else None
        try:
            embedded = await embedder.embed([text])
        except asyncio.CancelledError:
            # Cancelled in flight (the learned rule's time bound, the attempt itself): the
            # request may have reached the provider, which bills it: charged as estimated.
            estimate = estimate_tokens(len(text))
            await asyncio.shield(_charge(billed, embedder, estimate, started, "cancelled"))
            raise
        except Exception as exc:  # a cache must never fail the step (the local model included)
            log.warning("embedding failed, semantic cache skipped: %s", type(exc).__name__)
            sent = isinstance(exc, ProviderError) and may_have_been_billed(exc)
            estimate = estimate_tokens(len(text)) if sent else 0
            await _charge(billed, embedder, estimate, started, type(exc).__name__)
            return None
        await _charge(billed, embedder, embedded.billed_tokens, started, None)
        vector = embedded.vectors[0]
        self._recent[text] = vector
        while len(self._recent) > _RECENT_TEXTS:
            self._recent.popitem(last=False)
        return vector


async def _charge(
    calls: EmbeddingCalls | None, embedder: Embedder, tokens: int, started: float, error: str | None
) -> None:
    """Write a billed embedding call to the step's call log; a failure to write it is logged,
    never the step's failure (a cache must never fail the step)."""
    if calls is None:
        return
    try:
        await calls.embedding_call(embedder.name, tokens, started, error)
    except Exception:
        log.exception("an embedding call to %s was not charged", embedder.name)
