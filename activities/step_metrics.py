"""What a finished LLM step adds to the metrics: counts, tokens, cost, time per phase, and
what each guard decided.

``GUARD_RECORDERS`` is the one place a guard's own metric goes: a guard that reports a
``GuardEvent`` on ``LlmStepResult.guards`` is counted in ``tether_guard_events_total`` as it
is; a guard with a figure of its own (the cache's hit rate, the breaker's state) adds a function
here, keyed by its ``GuardName``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tether.contracts import GuardEvent, GuardName, LlmStepInput, LlmStepResult
from tether.core.metrics import (
    BREAKER_STATE,
    CACHE_LOOKUPS,
    COST_USD,
    GUARD_EVENTS,
    STEP_ERRORS,
    STEP_PHASE_SECONDS,
    STEP_SECONDS_TOTAL_PHASE,
    STEPS,
    TOKENS,
)

__all__ = ["GUARD_RECORDERS", "NO_FEATURE", "record_step", "record_step_error"]

NO_FEATURE = "none"
"""The feature label of steps their workflow did not tag."""

_BREAKER_LEVELS = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


def _cache(inp: LlmStepInput, result: LlmStepResult, event: GuardEvent) -> None:
    # ``exact_hit`` / ``semantic_hit`` count as hits; a found answer the judge's check did not
    # let through (``doubted``, ``unchecked``) as a look-up that missed. ``verified`` is the
    # check of a hit that is counted by its own event.
    if event.outcome == "verified":
        return
    result_label = "hit" if event.outcome.endswith("hit") else "miss"
    CACHE_LOOKUPS.labels(inp.workflow, result_label).inc()


def _breaker(inp: LlmStepInput, result: LlmStepResult, event: GuardEvent) -> None:
    level = _BREAKER_LEVELS.get(event.outcome)
    if level is not None:
        BREAKER_STATE.labels(result.provider).set(level)


GUARD_RECORDERS: dict[GuardName, Callable[[LlmStepInput, LlmStepResult, GuardEvent], None]] = {
    "cache": _cache,
    "breaker": _breaker,
}


def record_step(
    inp: LlmStepInput,
    result: LlmStepResult,
    *,
    activity_seconds: float,
    scheduled_at: datetime | None,
    started_at: datetime | None,
) -> None:
    """Record one step execution that returned ``result``.

    Args:
        activity_seconds: The activity's own wall time (this worker, model calls included).
        scheduled_at: When Temporal scheduled this attempt; with ``started_at`` (when a worker
            took it) it gives the queue time.
    """
    workflow, step = inp.workflow, _step_name(inp.step)
    STEPS.labels(workflow, step, result.model, result.status).inc()
    model_s = sum(attempt.latency_ms for attempt in result.attempts) / 1000
    phases = STEP_PHASE_SECONDS
    phases.labels(workflow, step, "model").observe(model_s)
    phases.labels(workflow, step, "orchestration").observe(max(activity_seconds - model_s, 0.0))
    phases.labels(workflow, step, STEP_SECONDS_TOTAL_PHASE).observe(activity_seconds)
    if scheduled_at is not None and started_at is not None:
        queued = (started_at - scheduled_at).total_seconds()
        phases.labels(workflow, step, "queue").observe(max(queued, 0.0))
    TOKENS.labels(workflow, step, result.model, "in").inc(result.usage.input_tokens)
    TOKENS.labels(workflow, step, result.model, "out").inc(result.usage.output_tokens)
    COST_USD.labels(workflow, step, inp.tenant, inp.feature or NO_FEATURE).inc(result.cost_usd)
    for event in result.guards:
        GUARD_EVENTS.labels(event.guard, event.outcome).inc()
        recorder = GUARD_RECORDERS.get(event.guard)
        if recorder is not None:
            recorder(inp, result, event)


def record_step_error(inp: LlmStepInput, error_type: str, model: str | None) -> None:
    """Record a step execution that raised (``model``: the model the failing call went to)."""
    provider = model.split("/", 1)[0] if model else "none"
    STEP_ERRORS.labels(inp.workflow, _step_name(inp.step), error_type, provider).inc()


def _step_name(step: str) -> str:
    # A step a workflow runs once per chunk is ``name#2``, ``name#3`` ...: one label for all.
    return step.split("#", 1)[0]
