"""The simulated provider: the offline default, deterministic for a seed, named as such everywhere.

It answers with JSON that fits the requested schema, steered by the words of the prompt, and
misbehaves on purpose (failures, invalid answers, low-confidence answers) at rates set by its
settings so that retries, repairs and human review all get exercised in a demo.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import time
import uuid
from typing import Any, TypeAlias

from activities.providers.base import ChatMessage, ChatRequest, ChatResponse
from policies.values import Usage
from tether.core.errors import ProviderUnavailableError

__all__ = ["REPAIR_PREFIX", "JsonValue", "SimulatedProvider", "answer_for_schema", "answer_text"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

REPAIR_PREFIX = "Your previous answer was invalid"
"""How the LLM step starts the user message that asks the model to fix an invalid answer."""

_MAX_DEPTH = 8
# Bounds the per-content call counters of a long-lived worker; the oldest are forgotten first.
_MAX_TRACKED_CONTENTS = 50_000
_LONG_TEXT_FIELDS = (
    "reply", "response", "answer", "draft", "message", "body", "summary", "explanation",
    "reason", "rationale", "description", "text", "content", "comment", "note", "feedback",
)  # fmt: skip
_REPLY_FIELDS = ("reply", "response", "answer", "draft", "message", "body")
_SHORT_TEXT_FIELDS = ("title", "subject", "headline", "label", "name", "topic", "keyword", "tag")
_SCORE_FIELDS = ("score", "confidence", "probability", "likelihood", "rating")
# Words that point at an enum value even when the value itself is not in the prompt, so that
# a ticket asking for a refund lands in "billing".
_ENUM_HINTS: dict[str, tuple[str, ...]] = {
    "billing": ("refund", "invoice", "charge", "payment", "paid", "price", "subscription", "bill"),
    "refund": ("refund", "money back", "reimburse"),
    "technical": ("error", "bug", "crash", "broken", "not working", "fails", "failed", "outage"),
    "bug": ("error", "bug", "crash", "broken", "not working"),
    "account": ("password", "login", "log in", "sign in", "account", "locked"),
    "shipping": ("delivery", "shipping", "package", "tracking", "parcel", "arrived"),
    "urgent": ("urgent", "asap", "immediately", "outage", "down", "emergency"),
    "high": ("urgent", "asap", "immediately", "outage", "angry", "lawyer", "cancel"),
    "low": ("whenever", "no rush", "minor", "curious", "question"),
    "negative": ("angry", "terrible", "awful", "disappointed", "frustrated", "unacceptable"),
    "positive": ("thanks", "thank you", "great", "love", "happy", "excellent"),
}
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i",
     "in", "is", "it", "my", "of", "on", "or", "our", "so", "that", "the", "their", "this", "to",
     "was", "we", "were", "will", "with", "you", "your")
)  # fmt: skip


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


def answer_for_schema(
    schema: dict[str, Any], prompt: str, rng: random.Random, *, confidence: float = 0.8
) -> JsonValue:
    """Write a plausible JSON value that validates against ``schema``.

    Args:
        schema: A JSON schema as pydantic's ``model_json_schema()`` writes it.
        prompt: Text that steers the answer: strings quote it, enums prefer values it mentions.
        rng: Source of every choice, for reproducible answers.
        confidence: Where score-like numbers (``score``, ``confidence`` ...) sit in their range.
    """
    return _SchemaAnswer(schema, prompt, rng, confidence).value(schema, "", 0)


def answer_text(prompt: str, rng: random.Random) -> str:
    """A short free-text answer that quotes a few words of the prompt."""
    quote = _quote(prompt, rng)
    return rng.choice(
        [
            f'Thanks for the details about "{quote}". Here is what we suggest as a next step.',
            f'Regarding "{quote}": this has been reviewed and a follow-up is on its way.',
        ]
    )


class _SchemaAnswer:
    def __init__(
        self, root: dict[str, Any], prompt: str, rng: random.Random, confidence: float
    ) -> None:
        self.root = root
        self.prompt = prompt
        self.lowered = prompt.lower()
        self.rng = rng
        self.confidence = confidence

    def value(self, schema: dict[str, Any], name: str, depth: int) -> JsonValue:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._enum(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self._resolve(option) for option in schema[key]]
                concrete = [option for option in options if option.get("type") != "null"]
                if not concrete or (depth >= _MAX_DEPTH and len(concrete) < len(options)):
                    return None
                return self.value(self.rng.choice(concrete), name, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            concrete_kinds = [k for k in kind if k != "null"]
            kind = concrete_kinds[0] if concrete_kinds else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else ""
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("integer", "number"):
            return self._number(schema, name, integer=kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        for _ in range(32):
            if "$ref" in schema:
                target: Any = self.root
                for segment in str(schema["$ref"]).removeprefix("#/").split("/"):
                    if segment:
                        target = target[segment.replace("~1", "/").replace("~0", "~")]
                siblings = {k: v for k, v in schema.items() if k != "$ref"}
                schema = {**target, **siblings}
            elif "allOf" in schema:
                merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
                for piece in schema["allOf"]:
                    part = self._resolve(piece)
                    merged["properties"] = {
                        **merged.get("properties", {}),
                        **part.get("properties", {}),
                    }
                    merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                    merged.update({k: v for k, v in part.items() if k not in merged})
                if not merged["properties"]:
                    del merged["properties"]
                schema = merged
            else:
                return schema
        raise ValueError("JSON schema $ref chain is too deep")

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, JsonValue]:
        required = set(schema.get("required", []))
        properties: dict[str, Any] = schema.get("properties", {})
        return {
            key: self.value(sub, key, depth + 1)
            for key, sub in properties.items()
            if key in required or depth < _MAX_DEPTH
        }

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[JsonValue]:
        prefix = schema.get("prefixItems")
        if prefix:
            return [self.value(item, name, depth + 1) for item in prefix]
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = low if depth >= _MAX_DEPTH else max(low, min(high, self.rng.randint(1, 3)))
        items = schema.get("items", {})
        values: list[JsonValue] = []
        for _ in range(count * 4):
            if len(values) >= count:
                break
            item = self.value(items, name.removesuffix("s"), depth + 1)
            if not schema.get("uniqueItems") or item not in values:
                values.append(item)
        return values

    def _enum(self, options: list[JsonValue]) -> JsonValue:
        if self.rng.random() < (1 - self.confidence) * 0.5:
            return self.rng.choice(options)  # an unsure model sometimes picks oddly
        scores = [self._mentions(option) for option in options]
        best = max(scores)
        return self.rng.choice([o for o, s in zip(options, scores, strict=True) if s == best])

    def _mentions(self, option: JsonValue) -> int:
        if not isinstance(option, str):
            return 0
        text = option.lower().replace("_", " ").replace("-", " ")
        score = 3 if re.search(rf"\b{re.escape(text)}\b", self.lowered) else 0
        return score + sum(1 for hint in _ENUM_HINTS.get(text, ()) if hint in self.lowered)

    def _number(self, schema: dict[str, Any], name: str, *, integer: bool) -> int | float:
        step = 1.0 if integer else 0.01
        low: float | None = schema.get("minimum")
        high: float | None = schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = float(schema["exclusiveMinimum"]) + step
        if "exclusiveMaximum" in schema:
            high = float(schema["exclusiveMaximum"]) - step
        scorelike = any(word in name.lower() for word in _SCORE_FIELDS)
        if low is None and high is None:
            low, high = (1.0, 5.0) if integer else (0.0, 1.0 if scorelike else 100.0)
        low = high - 10 if low is None and high is not None else low
        high = low + 10 if high is None and low is not None else high
        assert low is not None and high is not None
        position = self.confidence if scorelike else self.rng.random()
        position = min(1.0, max(0.0, position + self.rng.gauss(0, 0.03)))
        raw = low + (high - low) * position
        if integer:
            return min(math.floor(high), max(math.ceil(low), round(raw)))
        multiple = schema.get("multipleOf")
        if multiple:
            return min(high, max(low, round(raw / multiple) * multiple))
        rounded = round(raw, 2)
        return rounded if low <= rounded <= high else raw

    def _string(self, schema: dict[str, Any], name: str) -> str:
        field = name.lower()
        rng = self.rng
        fmt = schema.get("format")
        if fmt == "date-time":
            text = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00Z"
        elif fmt == "date":
            text = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        elif fmt == "email":
            text = "customer@example.com"
        elif fmt in ("uri", "url"):
            text = f"https://example.com/items/{rng.randint(100, 999)}"
        elif fmt == "uuid":
            text = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        elif field in ("language", "lang", "locale"):
            text = "en"
        elif field == "id" or field.endswith("_id"):
            text = f"{field.removesuffix('_id') or 'item'}-{rng.randint(1000, 9999)}"
        elif any(word in field for word in _LONG_TEXT_FIELDS):
            text = self._long_text(field)
        elif any(word in field for word in _SHORT_TEXT_FIELDS):
            text = _quote(self.prompt, rng, words=(2, 4)).capitalize()
        else:
            text = _quote(self.prompt, rng, words=(1, 3))
        return _fit(text, schema.get("minLength"), schema.get("maxLength"))

    def _long_text(self, field: str) -> str:
        quote = _quote(self.prompt, self.rng)
        if any(word in field for word in _REPLY_FIELDS):
            return self.rng.choice(
                [
                    f'Thanks for getting in touch about "{quote}". We have looked into it and '
                    "will follow up with the next steps shortly.",
                    f'Hello, and thank you for your message regarding "{quote}". Our team is on '
                    "it and you will hear from us within one business day.",
                ]
            )
        return self.rng.choice(
            [
                f'The customer writes about "{quote}" and asks for help resolving it.',
                f'The message concerns "{quote}"; the main request is a clear resolution.',
            ]
        )


def _quote(prompt: str, rng: random.Random, words: tuple[int, int] = (3, 6)) -> str:
    tokens = re.findall(r"[A-Za-z0-9][A-Za-z0-9'\-]*", prompt)
    meaningful = [i for i, token in enumerate(tokens) if token.lower() not in _STOPWORDS]
    if not meaningful:
        return "your request"
    start = rng.choice(meaningful)
    return " ".join(tokens[start : start + rng.randint(*words)])


def _fit(text: str, min_length: int | None, max_length: int | None) -> str:
    if min_length is not None:
        while len(text) < min_length:
            text = f"{text} Thank you." if text else "Thank you."
    if max_length is not None and len(text) > max_length:
        cut = text[:max_length]
        shorter = cut.rsplit(" ", 1)[0].rstrip(" ,;:")
        text = shorter if min_length is None or len(shorter) >= min_length else cut
    return text


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
