"""The simulated provider: the offline default, deterministic for a seed, named as such everywhere.

It answers with JSON that fits the requested schema (written by ``simulated_answers``), and
misbehaves on purpose (failures, invalid answers, low-confidence answers) at rates set by its
settings so that retries, repairs and human review all get exercised in a demo.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from typing import Any

from activities.providers.base import REPAIR_PREFIX, ChatMessage, ChatRequest, ChatResponse
from activities.providers.simulated_answers import JsonValue, answer_for_schema, answer_text
from policies.values import Usage
from tether.core.errors import ProviderUnavailableError

__all__ = ["REPAIR_PREFIX", "JsonValue", "SimulatedProvider", "answer_for_schema", "answer_text"]

# Bounds the per-content call counters of a long-lived worker; the oldest are forgotten first.
_MAX_TRACKED_CONTENTS = 50_000


class SimulatedProvider:
    """A stand-in model that needs no network: deterministic for a seed.

    Each call draws from a random generator seeded by ``seed``, the request's content and how
    many times this instance has seen that content, so a retried request may succeed after a
    simulated failure while the whole sequence still replays identically.

    Args:
        latency_ms: Mean simulated latency; 0 answers at once.
        failure_rate: Probability in [0, 1] that a call raises ``ProviderUnavailableError``.
        quality: In [0, 1]; lower quality gives more invalid answers and lower logprobs.
        seed: Seed of the whole simulated sequence.
    """

    name = "simulated"
    simulated = True

    def __init__(
        self,
        latency_ms: float = 150.0,
        failure_rate: float = 0.0,
        quality: float = 0.85,
        seed: int = 7,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not 0 <= failure_rate <= 1 or not 0 <= quality <= 1:
            raise ValueError("failure_rate and quality must be within [0, 1]")
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self.quality = quality
        self.seed = seed
        self._calls_by_content: dict[str, int] = {}

    async def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        digest = _content_digest(request)
        call = self._calls_by_content.pop(digest, 0)
        self._calls_by_content[digest] = call + 1  # re-inserted: the dict stays in LRU order
        if len(self._calls_by_content) > _MAX_TRACKED_CONTENTS:
            del self._calls_by_content[next(iter(self._calls_by_content))]
        rng = random.Random(f"{self.seed}:{digest}:{call}")

        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms * rng.uniform(0.8, 1.2) / 1000.0)
        if rng.random() < self.failure_rate:
            raise ProviderUnavailableError("simulated provider failure", provider=self.name)

        # Confidence belongs to the request's content, not the call: a hard item stays hard
        # across retries and self-consistency samples.
        confidence = self._confidence(random.Random(f"{self.seed}:{digest}:confidence"))
        prompt = _prompt_text(request.messages)
        if request.json_schema is None:
            text = answer_text(prompt, rng)
        else:
            value = answer_for_schema(request.json_schema, prompt, rng, confidence=confidence)
            text = json.dumps(value, ensure_ascii=False)
            spoil_roll = rng.random()
            if not _is_repair(request.messages) and spoil_roll < (1 - self.quality) * 0.5:
                text = _spoiled(value, request.json_schema, text, rng)

        input_chars = sum(len(message.content) for message in request.messages)
        usage = Usage(input_tokens=_tokens(input_chars), output_tokens=_tokens(len(text)))
        logprobs = (
            _token_logprobs(usage.output_tokens, confidence, rng) if request.logprobs else None
        )
        return ChatResponse(
            text=text,
            usage=usage,
            model=request.model,
            provider=self.name,
            simulated=True,
            token_logprobs=logprobs,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _confidence(self, rng: random.Random) -> float:
        if rng.random() < 0.12:
            # Markedly unsure answers, so that some items land in human review.
            return rng.uniform(0.15, 0.5) * max(self.quality, 0.2)
        return min(0.999, max(0.01, rng.gauss(self.quality, 0.06)))


def _spoiled(value: JsonValue, schema: dict[str, Any], text: str, rng: random.Random) -> str:
    """An answer a real model gets wrong now and then: truncated, chatty, or missing a field."""
    required = [
        key for key in schema.get("required", []) if isinstance(value, dict) and key in value
    ]
    choice = rng.randrange(3 if required else 2)
    if choice == 2 and isinstance(value, dict):
        missing = rng.choice(required)
        return json.dumps({k: v for k, v in value.items() if k != missing}, ensure_ascii=False)
    if choice == 1:
        return f"Sure! Here is the answer:\n{text}"
    return text[: max(1, len(text) // 2)]


def _token_logprobs(count: int, confidence: float, rng: random.Random) -> list[float]:
    target = math.log(confidence)
    raw = [rng.expovariate(1.0) for _ in range(max(1, count))]
    scale = target / (sum(raw) / len(raw))
    return [max(-20.0, round(value * scale, 4)) for value in raw]


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _is_repair(messages: list[ChatMessage]) -> bool:
    last = messages[-1] if messages else None
    return last is not None and last.role == "user" and _is_repair_text(last.content)


def _is_repair_text(content: str) -> bool:
    return content.lstrip().startswith(REPAIR_PREFIX)


def _prompt_text(messages: list[ChatMessage]) -> str:
    """The user's words that steer the answer (not the system prompt, not repair requests)."""
    users = [m.content for m in messages if m.role == "user" and not _is_repair_text(m.content)]
    return "\n".join(users)


def _content_digest(request: ChatRequest) -> str:
    content = json.dumps(
        [request.model, [[m.role, m.content] for m in request.messages]], ensure_ascii=False
    )
    return hashlib.sha256(content.encode()).hexdigest()
