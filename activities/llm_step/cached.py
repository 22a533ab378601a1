"""A step answered from the cache: no model call (a judge's check of a first reuse at most),
recorded and audited."""

from __future__ import annotations

import time

from sqlmodel import Session

from activities.deps import ActivityDeps
from activities.llm_step.call_log import CallLog, settle_step
from activities.step_cache import CacheHit
from policies.values import ConfidenceReport
from tether.contracts import GuardEvent, LlmStepInput, LlmStepResult
from tether.store.audit import append_event

__all__ = ["cache_event", "reuse_checked", "served_from_cache"]


def cache_event(hit: CacheHit) -> GuardEvent:
    detail = (
        "same prompt answered before"
        if hit.kind == "exact_hit"
        else f"similar input answered before (cosine {hit.similarity:.3f})"
    )
    if hit.entry.approved:
        detail += ", answer approved by a reviewer"
    return GuardEvent(guard="cache", outcome=hit.kind, detail=detail, value=hit.similarity)


def _served_confidence(deps: ActivityDeps, hit: CacheHit) -> ConfidenceReport:
    """The answer's stored report; an answer a reviewer approved (or wrote) is accepted when the
    policy trusts reviewers' answers, with the reason on the report."""
    report = ConfidenceReport.model_validate(hit.entry.confidence)
    trusted = deps.policy.cache.accept_approved
    if not hit.entry.approved or trusted == "never":
        return report
    if trusted == "exact" and hit.kind != "exact_hit":
        return report
    input_was = "the same input" if hit.kind == "exact_hit" else "a similar input"
    return report.model_copy(
        update={
            "outcome": "accept",
            "reasons": [
                f"accepted: a reviewer approved this answer for {input_was} "
                f"(model score {report.score:.2f})"
            ],
        }
    )


def reuse_checked(score: float | None, least: float, served: bool) -> GuardEvent:
    """The judge's check of a cached answer before its first reuse, as a guard event:
    ``verified`` (served), ``doubted`` (evicted) or ``unchecked`` (no readable grade, or the
    answer evicted by someone else during the check: not served)."""
    graded = "no readable grade" if score is None else f"graded {score:.2f}"
    detail = f"first reuse: the judge {graded} for this input (at least {least:.2f} to serve it)"
    if served:
        return GuardEvent(guard="cache", outcome="verified", detail=detail, value=score)
    if score is not None and score < least:
        detail += "; evicted, the model answers"
        return GuardEvent(guard="cache", outcome="doubted", detail=detail, value=score)
    detail += "; not served, the model answers"
    return GuardEvent(guard="cache", outcome="unchecked", detail=detail, value=score)


async def served_from_cache(
    deps: ActivityDeps,
    inp: LlmStepInput,
    hit: CacheHit,
    log: CallLog,
    *,
    model: str,
    route_length: int,
    started: float,
    guards: list[GuardEvent] | None = None,
) -> LlmStepResult:
    """The cached answer as the step's result: its hold released, charged only what ``log``
    holds (the judge's check of a first reuse, a billed embedding of the input), the hit in the
    audit log; the workflow's confidence gate
    still judges it (its stored report, or accept for an answer a reviewer approved)."""
    entry, event = hit.entry, cache_event(hit)
    attempt = log.attempt

    result = LlmStepResult(
        step=inp.step,
        status="valid",
        output=entry.output,
        raw_output=entry.raw_output,
        output_digest=entry.output_digest,
        model=model,
        provider=entry.provider,
        simulated=entry.provider == "simulated",
        route_length=route_length,
        usage=log.usage,
        cost_usd=log.cost_usd,
        run_cost_usd=0.0,
        latency_ms=(time.perf_counter() - started) * 1000,
        repairs=0,
        attempts=log.records,
        confidence=_served_confidence(deps, hit),
        guards=[*(guards or []), event],
    )

    def _settle(session: Session) -> float:
        append_event(
            session,
            key=f"cache_hit:{inp.idempotency_key}/a{attempt}",
            kind="cache_hit",
            actor="tether",
            run_id=inp.run_id,
            detail={
                "step": inp.step,
                "tenant": inp.tenant,
                "model": model,
                "outcome": hit.kind,
                "similarity": hit.similarity,
                "approved": entry.approved,
                "digest": entry.output_digest,
                "cost_usd": log.cost_usd,
            },
        )
        return settle_step(session, inp, result)

    run_spent = await deps.in_session(_settle)
    return result.model_copy(update={"run_cost_usd": round(run_spent, 8)})
