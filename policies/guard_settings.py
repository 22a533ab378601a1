"""Settings of the input guards (issue 10, item 5): PII redaction and prompt-injection detection.

Plain data validated by pydantic, in the style of ``policies.models``. Not yet referenced by
``TetherPolicy``: the lead wires ``pii`` and ``injection`` into the policy file later. The
defaults are the safe ones the embedded default policy is meant to use.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ALL_PII_KINDS",
    "PRESIDIO_EXTRA_MISSING",
    "InjectionAction",
    "InjectionGuardSettings",
    "PiiDetectorName",
    "PiiGuardSettings",
    "PiiKind",
    "PlaceholderStyle",
    "PresidioSettings",
    "presidio_installed",
]

PiiKind = Literal[
    "EMAIL",
    "PHONE",
    "CARD",
    "IBAN",
    "US_SSN",
    "UK_NINO",
    "DE_TAX_ID",
    "ES_DNI",
    "FR_INSEE",
    "IPV4",
    "IPV6",
]
"""The kinds the built-in detectors find; the placeholder of a hit is ``[KIND_n]``."""

ALL_PII_KINDS: frozenset[PiiKind] = frozenset(
    (
        "EMAIL",
        "PHONE",
        "CARD",
        "IBAN",
        "US_SSN",
        "UK_NINO",
        "DE_TAX_ID",
        "ES_DNI",
        "FR_INSEE",
        "IPV4",
        "IPV6",
    )
)

PlaceholderStyle = Literal["brackets", "white_brackets"]
"""``brackets``: ``[EMAIL_1]``; ``white_brackets``: ``⟦EMAIL_1⟧`` (rarer in real text)."""

InjectionAction = Literal["quarantine", "flag", "allow"]
"""What a hostile input leads to: ``quarantine`` sends the item to human review instead of the
model; ``flag`` lets it through, recorded; ``allow`` records nothing but the verdict."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PiiDetectorName = Literal["builtin", "presidio"]
"""``builtin``: the regex and check-digit detectors of ``policies.pii_detectors``; ``presidio``:
Presidio's pattern recognizers (the optional extra ``tether[presidio]``)."""

PRESIDIO_EXTRA_MISSING = (
    "pii.detectors lists presidio but Presidio is not installed: pip install 'tether[presidio]'"
)
_NER_ENTITIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "GPE", "NORP"})
_NETWORK_ENTITIES = frozenset({"URL", "EMAIL_ADDRESS"})
_ENTITY_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


class PresidioSettings(_Strict):
    """Presidio's pattern recognizers: which entities, in which language, from which score.

    Named entities (PERSON, LOCATION) need a spaCy NER model that PyPI does not publish, so only
    pattern recognizers are offered; an entity without one is refused when the worker builds
    its analyzer."""

    entities: frozenset[str] = Field(
        default=frozenset(
            {"US_PASSPORT", "US_DRIVER_LICENSE", "US_ITIN", "UK_NHS", "CRYPTO", "MEDICAL_LICENSE"}
        ),
        min_length=1,
        description="Presidio entity names; each becomes a placeholder kind ([UK_NHS_1]).",
    )
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    score_threshold: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="Presidio hits scoring below this pass through (weak patterns reach 0.4 "
        "only with a context word nearby, e.g. 'passport').",
    )

    @field_validator("entities")
    @classmethod
    def _pattern_entities(cls, entities: frozenset[str]) -> frozenset[str]:
        for entity in sorted(entities):
            if not _ENTITY_NAME.fullmatch(entity):
                raise ValueError(f"{entity!r} is not a Presidio entity name (UPPER_CASE)")
            if entity in _NETWORK_ENTITIES:
                raise ValueError(
                    f"{entity}: Presidio checks it with tldextract, which fetches the public "
                    "suffix list at run time (the built-in EMAIL kind finds e-mail addresses)"
                )
            if entity in _NER_ENTITIES:
                raise ValueError(
                    f"{entity} needs a spaCy NER model, which Tether does not install (not on "
                    "PyPI); only Presidio's pattern recognizers are available"
                )
        return entities


def presidio_installed() -> bool:
    """Whether the ``presidio`` extra is installed (looked up, not imported: importing it
    loads spaCy, seconds)."""
    return importlib.util.find_spec("presidio_analyzer") is not None


class PiiGuardSettings(_Strict):
    """PII detection and redaction before text reaches a provider, Slack, a log or the store."""

    enabled: bool = True
    kinds: frozenset[PiiKind] = Field(
        default=ALL_PII_KINDS, description="The built-in kinds to detect; others pass through."
    )
    detectors: tuple[PiiDetectorName, ...] = Field(
        default=("builtin",),
        min_length=1,
        description="Which detectors run: builtin, presidio, or both ([builtin, presidio]).",
    )
    presidio: PresidioSettings = PresidioSettings()
    placeholder_style: PlaceholderStyle = "brackets"
    restore_in_output: bool = Field(
        default=True, description="Put the original values back into the step's final output."
    )
    reveal_to_roles: frozenset[str] = Field(
        default=frozenset(),
        description="Reviewer roles that may see the original values; everyone else sees placeholders.",
    )

    @model_validator(mode="after")
    def _presidio_extra(self) -> PiiGuardSettings:
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError("pii.detectors lists a detector twice")
        if self.enabled and "presidio" in self.detectors and not presidio_installed():
            raise ValueError(PRESIDIO_EXTRA_MISSING)
        return self


class InjectionGuardSettings(_Strict):
    """Prompt-injection detection on untrusted input (tickets, documents, tool results)."""

    enabled: bool = True
    threshold: float = Field(
        default=0.5, gt=0, le=1, description="A verdict whose score reaches this is hostile."
    )
    on_hostile: InjectionAction = "quarantine"
    decode_depth: int = Field(
        default=2,
        ge=0,
        le=4,
        description="How many layers of encoding (base64, hex, URL, rot13) are decoded and re-scanned.",
    )
    max_scan_chars: int = Field(
        default=32_000,
        gt=0,
        description="Longer inputs are scanned on their first and last halves of this size.",
    )
    fence_untrusted: bool = Field(
        default=True, description="Wrap untrusted text in a fence the text cannot close."
    )
