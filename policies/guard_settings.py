"""Settings of the input guards (issue 10, item 5): PII redaction and prompt-injection detection.

Plain data validated by pydantic, in the style of ``policies.models``. Not yet referenced by
``TetherPolicy``: the lead wires ``pii`` and ``injection`` into the policy file later. The
defaults are the safe ones the embedded default policy is meant to use.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ALL_PII_KINDS",
    "InjectionAction",
    "InjectionGuardSettings",
    "PiiGuardSettings",
    "PiiKind",
    "PlaceholderStyle",
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


class PiiGuardSettings(_Strict):
    """PII detection and redaction before text reaches a provider, Slack, a log or the store."""

    enabled: bool = True
    kinds: frozenset[PiiKind] = Field(
        default=ALL_PII_KINDS, description="The built-in kinds to detect; others pass through."
    )
    placeholder_style: PlaceholderStyle = "brackets"
    restore_in_output: bool = Field(
        default=True, description="Put the original values back into the step's final output."
    )
    reveal_to_roles: frozenset[str] = Field(
        default=frozenset(),
        description="Reviewer roles that may see the original values; everyone else sees placeholders.",
    )


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
