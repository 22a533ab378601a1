"""What the simulated provider answers: JSON that fits a schema, steered by the prompt's words.

Pure and deterministic for a random generator; the fake provider server in the tests writes its
default answers with it too.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from typing import Any, TypeAlias

__all__ = ["JsonValue", "answer_for_schema", "answer_text"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

_MAX_DEPTH = 8
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
