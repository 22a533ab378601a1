"""What one step's result adds to the metrics, guards included (the guards' own figures: the
cache's hits and misses, the breaker's state), asserted on the registry's values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from activities.step_metrics import record_step, record_step_error
from policies.models import GateThresholds
from policies.values import ConfidenceReport, Usage
from tether.contracts import AttemptRecord, GuardEvent, LlmStepInput, LlmStepResult, PromptTemplate


def step_input(workflow: str, feature: str | None = None) -> LlmStepInput:
    return LlmStepInput(
        run_id="r-1",
        workflow=workflow,
        step="classify",
        tenant="acme",
        prompt=PromptTemplate(id="p", version="1", system="", user=""),
        output_model="m:M",
        idempotency_key="k",
        feature=feature,
    )


def step_result(guards: list[GuardEvent], *, model_ms: float = 120.0) -> LlmStepResult:
    usage = Usage(input_tokens=100, output_tokens=20)
    attempt = AttemptRecord(
        key="k/1", call="main", activity_attempt=1, model="openai/gpt-4o-mini",
        provider="openai", simulated=False, usage=usage, cost_usd=0.002, latency_ms=model_ms,
        outcome="ok",
    )  # fmt: skip
    return LlmStepResult(
        step="classify", status="valid", output={}, raw_output="{}", output_digest="d",
        model="openai/gpt-4o-mini", provider="openai", simulated=False, route_length=1,
        usage=usage, cost_usd=0.002, run_cost_usd=0.002, latency_ms=150.0, repairs=0,
        attempts=[attempt, attempt.model_copy(update={"call": "judge"})],
        confidence=ConfidenceReport(
            score=0.9, components=[], outcome="accept", thresholds=GateThresholds()
        ),
        guards=guards,
    )  # fmt: skip


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_step_records_tokens_cost_phases_and_its_guards() -> None:
    workflow = f"wf-{uuid.uuid4().hex[:6]}"  # labels of this test only
    scheduled = datetime(2026, 1, 1, tzinfo=UTC)
    guards = [
        GuardEvent(guard="cache", outcome="miss"),
        GuardEvent(guard="breaker", outcome="half_open"),
        GuardEvent(guard="pii", outcome="redacted", detail="email"),
    ]
    record_step(
        step_input(workflow, "triage"),
        step_result(guards),
        activity_seconds=0.5,
        scheduled_at=scheduled,
        started_at=scheduled + timedelta(seconds=2),
    )
    record_step(
        step_input(workflow),
        step_result([GuardEvent(guard="cache", outcome="semantic_hit", value=0.97),
                     GuardEvent(guard="breaker", outcome="open")]),
        activity_seconds=0.3, scheduled_at=None, started_at=None,
    )  # fmt: skip
    step = {"workflow": workflow, "step": "classify"}
    assert sample("tether_steps_total", model="openai/gpt-4o-mini", status="valid", **step) == 2
    assert sample("tether_tokens_total", model="openai/gpt-4o-mini", direction="in", **step) == 200
    assert sample("tether_cost_usd_total", tenant="acme", feature="triage", **step) == 0.002
    assert sample("tether_cost_usd_total", tenant="acme", feature="none", **step) == 0.002
    # Model time is every provider call of the step (main and judge): 2 x 120 ms per step;
    # orchestration the rest of each activity: (0.5 - 0.24) + (0.3 - 0.24).
    assert sample("tether_step_phase_seconds_sum", phase="model", **step) == 0.48
    assert round(sample("tether_step_phase_seconds_sum", phase="orchestration", **step), 6) == 0.32
    assert sample("tether_step_phase_seconds_sum", phase="queue", **step) == 2.0
    assert sample("tether_step_phase_seconds_count", phase="queue", **step) == 1
    assert sample("tether_cache_lookups_total", workflow=workflow, result="hit") == 1
    assert sample("tether_cache_lookups_total", workflow=workflow, result="miss") == 1
    assert sample("tether_breaker_state", provider="openai") == 2.0  # the last seen: open
    assert sample("tether_guard_events_total", guard="pii", outcome="redacted") >= 1


def test_a_failed_step_counts_its_error_type_and_provider() -> None:
    workflow = f"wf-{uuid.uuid4().hex[:6]}"
    record_step_error(step_input(workflow), "ProviderUnavailable", "openai/gpt-4o-mini")
    record_step_error(step_input(workflow), "ProviderUnavailable", "openai/gpt-4o")
    labels = {"workflow": workflow, "step": "classify", "error_type": "ProviderUnavailable"}
    assert sample("tether_step_errors_total", provider="openai", **labels) == 2
