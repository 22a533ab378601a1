"""PII detection and redaction: typed placeholders in, original values back out.

``redact(text)`` replaces each detected value with a stable typed placeholder (``[EMAIL_1]``,
or ``⟦EMAIL_1⟧`` in the ``white_brackets`` style): the same value gets the same placeholder
within one redaction, so a model can refer to it. ``restore(text, mapping)`` puts the values
back, and only for placeholders that redaction issued: a model inventing ``[EMAIL_9]`` restores
nothing. ``redact_value`` does the same over nested JSON-like values (dict and list of str),
sharing one mapping.

Detectors are pluggable: anything with ``kinds`` and ``detect(text)`` yielding ``PiiMatch``
is a ``PiiDetector``. ``settings.detectors`` says whether the built-in ones run; detectors passed
in (``activities.pii_presidio``'s Presidio adapter, built by ``pii_detectors(settings)`` outside
this pure package) run beside them.

The mapping holds the raw values: it must stay out of logs, the store and workflow history (keep
it where the policy allows restoring, e.g. in the activity that sends the final output).
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, JsonValue

from policies.guard_settings import PiiGuardSettings, PlaceholderStyle
from policies.pii_detectors import BUILTIN_DETECTORS, PiiMatch

__all__ = [
    "JsonValue",
    "PiiDetector",
    "PiiMatch",
    "RedactedValue",
    "Redaction",
    "Redactor",
    "detect",
    "placeholder_counts",
    "redact",
    "redact_value",
    "restore",
    "restore_value",
    "summary",
]


@runtime_checkable
class PiiDetector(Protocol):
    """Finds values of one or more kinds in a text. Kinds are upper case (``EMAIL``)."""

    @property
    def kinds(self) -> frozenset[str]: ...

    def detect(self, text: str) -> Iterable[PiiMatch]: ...


class _Builtin:
    """The built-in detectors restricted to the kinds the settings enable."""

    def __init__(self, kinds: frozenset[str]) -> None:
        self._detectors = [d for d in BUILTIN_DETECTORS if d.kind in kinds]
        self.kinds = frozenset(d.kind for d in self._detectors)

    def detect(self, text: str) -> Iterable[PiiMatch]:
        for detector in self._detectors:
            yield from detector.detect(text)


_DEFAULT_SETTINGS = PiiGuardSettings()
_DEFAULT_DETECTORS: tuple[PiiDetector, ...] = (_Builtin(frozenset(_DEFAULT_SETTINGS.kinds)),)

_PLACEHOLDER = {
    "brackets": re.compile(r"\[([A-Z][A-Z0-9_]*?)_(\d+)\]"),
    "white_brackets": re.compile(r"\u27e6([A-Z][A-Z0-9_]*?)_(\d+)\u27e7"),
}
_ANY_PLACEHOLDER = re.compile(r"[\[\u27e6][A-Z][A-Z0-9_]*?_\d+[\]\u27e7]")
_ANY_LABEL = re.compile(r"[\[\u27e6]([A-Z][A-Z0-9_]*?)_(\d+)[\]\u27e7]")


def _detectors_for(
    settings: PiiGuardSettings, extra: Sequence[PiiDetector]
) -> tuple[PiiDetector, ...]:
    if "builtin" not in settings.detectors:
        return tuple(extra)
    base = _DEFAULT_DETECTORS if settings.kinds == _DEFAULT_SETTINGS.kinds else None
    if base is None:
        base = (_Builtin(frozenset(settings.kinds)),)
    return (*base, *extra)


def detect(text: str, detectors: Iterable[PiiDetector] = _DEFAULT_DETECTORS) -> list[PiiMatch]:
    """Non-overlapping hits in text order; on overlap the higher-priority, then longer, wins."""
    candidates = [m for d in detectors for m in d.detect(text) if m.end > m.start]
    if not candidates:
        return []
    candidates.sort(key=lambda m: (m.priority, m.start - m.end, m.start))
    taken: list[PiiMatch] = []
    for match in candidates:
        if all(match.end <= t.start or match.start >= t.end for t in taken):
            taken.append(match)
    taken.sort(key=lambda m: m.start)
    return taken


class Redaction(BaseModel):
    """A redacted text, its placeholder -> value mapping (raw PII), and hit counts per kind."""

    model_config = ConfigDict(frozen=True)

    text: str
    mapping: dict[str, str]
    counts: dict[str, int]
    """Hits per kind (occurrences, not distinct values): safe to record, holds no values."""


class RedactedValue(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: JsonValue
    mapping: dict[str, str]
    counts: dict[str, int]


class Redactor:
    """One redaction session: numbering and the mapping are shared by every text it redacts."""

    def __init__(
        self,
        settings: PiiGuardSettings = _DEFAULT_SETTINGS,
        detectors: Sequence[PiiDetector] = (),
        *,
        reserved: Iterable[str] = (),
        known: Mapping[str, str] = {},
    ) -> None:
        self._style: PlaceholderStyle = settings.placeholder_style
        self._enabled = settings.enabled
        self._detectors = _detectors_for(settings, detectors)
        self._by_value: dict[tuple[str, str], str] = {}
        self._next: dict[str, int] = {}
        self._reserved = set(reserved)
        """Placeholder-shaped strings already in the input: never issued, so never restored."""
        self.mapping: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        for placeholder, value in known.items():
            self._remember(placeholder, value)

    def _remember(self, placeholder: str, value: str) -> None:
        """Adopt a placeholder issued earlier in the run (``known``): the same value gets it
        again, and numbering of its kind continues after it."""
        parsed = _ANY_LABEL.fullmatch(placeholder)
        if parsed is None:
            return
        kind, number = parsed.group(1), int(parsed.group(2))
        self._by_value[(kind, value)] = placeholder
        self._next[kind] = max(self._next.get(kind, 0), number)
        self.mapping[placeholder] = value

    def reserve(self, text: str) -> None:
        self._reserved.update(_ANY_PLACEHOLDER.findall(text))

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        number = self._next.get(kind, 0)
        while True:
            number += 1
            label = f"{kind}_{number}"
            placeholder = f"[{label}]" if self._style == "brackets" else f"\u27e6{label}\u27e7"
            if placeholder not in self._reserved:
                break
        self._next[kind] = number
        self._by_value[key] = placeholder
        self.mapping[placeholder] = value
        return placeholder

    def redact(self, text: str) -> str:
        if not self._enabled or not text:
            return text
        self.reserve(text)
        hits = detect(text, self._detectors)
        if not hits:
            return text
        parts: list[str] = []
        position = 0
        for hit in hits:
            parts.append(text[position : hit.start])
            parts.append(self._placeholder(hit.kind, hit.value))
            self.counts[hit.kind] = self.counts.get(hit.kind, 0) + 1
            position = hit.end
        parts.append(text[position:])
        return "".join(parts)

    def redact_value(self, value: JsonValue) -> JsonValue:
        """Strings anywhere inside dicts and lists; dict keys and non-strings stay as they are."""
        for text in _strings(value):
            self.reserve(text)
        return _map_strings(value, self.redact)


def _strings(value: JsonValue) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _map_strings(value: JsonValue, change: _StrFn) -> JsonValue:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    return value


class _StrFn(Protocol):
    def __call__(self, text: str, /) -> str: ...


def redact(
    text: str,
    settings: PiiGuardSettings = _DEFAULT_SETTINGS,
    detectors: Sequence[PiiDetector] = (),
) -> Redaction:
    """Replace each PII value in ``text`` with a typed placeholder; ``detectors`` add to the
    built-in ones (restricted to ``settings.kinds``)."""
    redactor = Redactor(settings, detectors)
    redacted = redactor.redact(text)
    return Redaction(text=redacted, mapping=redactor.mapping, counts=redactor.counts)


def redact_value(
    value: JsonValue,
    settings: PiiGuardSettings = _DEFAULT_SETTINGS,
    detectors: Sequence[PiiDetector] = (),
) -> RedactedValue:
    redactor = Redactor(settings, detectors)
    redacted = redactor.redact_value(value)
    return RedactedValue(value=redacted, mapping=redactor.mapping, counts=redactor.counts)


def restore(text: str, mapping: Mapping[str, str]) -> str:
    """Put back the values of placeholders in ``mapping``; any other placeholder stays as is."""
    if not mapping or not text:
        return text
    return _ANY_PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)


def restore_value(value: JsonValue, mapping: Mapping[str, str]) -> JsonValue:
    return _map_strings(value, lambda text: restore(text, mapping))


def placeholder_counts(
    texts: Iterable[str], mapping: Mapping[str, str] | None = None, kinds: Iterable[str] = ()
) -> dict[str, int]:
    """How many times each kind's placeholders occur in ``texts``: those in ``mapping`` (issued
    ones), or without a mapping any placeholder-shaped text of one of ``kinds``."""
    wanted = frozenset(kinds)
    counts: dict[str, int] = {}
    for text in texts:
        for found in _ANY_LABEL.finditer(text):
            kind = found.group(1)
            if (found.group() in mapping) if mapping is not None else (kind in wanted):
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def summary(counts: Mapping[str, int]) -> str:
    """``EMAIL x2, CARD x1``: kinds and counts only, most frequent first; safe to record."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{kind} x{count}" for kind, count in ordered)
