"""The prompt-injection guard of an LLM step: its untrusted inputs scored before any model call.

Every variable and stored text of a step is untrusted unless the step lists it as trusted (run
inputs come from customers and documents). A hostile verdict under ``on_hostile: quarantine``
holds the step back from the model; a reviewer's approval clears exactly the texts they were
shown the verdict for (by digest), so the step runs on them when the workflow asks again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from policies.guard_settings import InjectionGuardSettings
from policies.injection import assess
from tether.contracts import GuardEvent, InjectionQuarantine, LlmStepInput

__all__ = ["InjectionScreening", "input_digest", "screen_inputs"]

_MAX_EVIDENCE = 6


def input_digest(text: str) -> str:
    """The digest an approval of a quarantined text is remembered by."""
    return hashlib.sha256(b"tether-input\x00" + text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class InjectionScreening:
    """What the guard decided for one step."""

    event: GuardEvent | None
    """None when the guard is off."""
    quarantine: InjectionQuarantine | None
    """Set when the step must not call a model."""
    untrusted: frozenset[str]
    """The variables to fence in the prompt."""

    @property
    def audited(self) -> bool:
        """Quarantines and flags go to the audit log; clean verdicts only to the step."""
        return self.event is not None and self.event.outcome in ("quarantined", "flagged")


def screen_inputs(
    settings: InjectionGuardSettings, inp: LlmStepInput, variables: dict[str, str]
) -> InjectionScreening:
    """Score the step's untrusted inputs; texts a reviewer cleared are not scored again."""
    untrusted = frozenset(name for name in variables if name not in inp.trusted_variables)
    if not settings.enabled:
        return InjectionScreening(event=None, quarantine=None, untrusted=untrusted)
    cleared = set(inp.cleared_inputs)
    score, rules, evidence = 0.0, list[str](), list[str]()
    hostile: list[str] = []
    digests: list[str] = []
    skipped: list[str] = []
    for name in sorted(untrusted):
        text = variables[name]
        digest = input_digest(text)
        if digest in cleared:
            skipped.append(name)
            continue
        verdict = assess(text, settings)
        score = max(score, verdict.score)
        if not verdict.hostile:
            continue
        hostile.append(name)
        digests.append(digest)
        for signal in verdict.signals:
            rule = f"{signal.category}/{signal.rule}"
            if rule not in rules:
                rules.append(rule)
            if signal.evidence and len(evidence) < _MAX_EVIDENCE:
                evidence.append(f"{name}: {signal.evidence}")
    outcome = _outcome(settings, hostile, skipped)
    detail = "; ".join(
        part
        for part in (
            f"{', '.join(hostile)}: {', '.join(rules)}" if hostile else "",
            f"cleared by a reviewer: {', '.join(skipped)}" if skipped else "",
        )
        if part
    )
    event = GuardEvent(guard="injection", outcome=outcome, detail=detail, value=round(score, 4))
    quarantine = (
        InjectionQuarantine(
            score=round(score, 4),
            threshold=settings.threshold,
            variables=hostile,
            rules=rules,
            evidence=evidence,
            input_digests=digests,
        )
        if outcome == "quarantined"
        else None
    )
    return InjectionScreening(event=event, quarantine=quarantine, untrusted=untrusted)


def _outcome(settings: InjectionGuardSettings, hostile: list[str], skipped: list[str]) -> str:
    if hostile:
        return {"quarantine": "quarantined", "flag": "flagged", "allow": "allowed"}[
            settings.on_hostile
        ]
    return "cleared" if skipped else "clean"
