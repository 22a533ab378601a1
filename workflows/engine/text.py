"""The sentences a run writes into halts and review summaries."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from policies.values import ConfidenceReport
    from tether.contracts import LlmStepResult, ReviewReason


def confidence_line(report: ConfidenceReport, verdict: str) -> str:
    why = "; ".join(report.reasons) or "no details"
    return f"confidence {report.score:.2f} {verdict} ({why})"


def review_summary(step: str, reason: ReviewReason, result: LlmStepResult) -> str:
    if reason == "invalid_output":
        return f"{step}: the model's output failed validation after {result.repairs} repairs ({result.validation_error})"
    if reason == "prompt_injection" and result.quarantine is not None:
        verdict = result.quarantine
        rules = ", ".join(verdict.rules[:3]) + (", ..." if len(verdict.rules) > 3 else "")
        return (
            f"{step}: input held back from the model, prompt injection suspected in "
            f"{', '.join(verdict.variables)} (score {verdict.score:.2f}, threshold "
            f"{verdict.threshold:.2f}: {rules})"
        )
    return f"{step}: {confidence_line(result.confidence, 'needs review')}"


def human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
