"""Tracing with ``TETHER_TRACING=1``: a run, its steps and a decision are OpenTelemetry spans of
one trace (read from an in-memory exporter); off by default."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from policies.models import TetherPolicy
from tests.conftest import make_settings
from tests.policy_variants import gated
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import decision_for, wait_for_pending
from tether.client import connect
from tether.tracing import tracing_interceptors
from tether.worker import running_worker

pytestmark = pytest.mark.integration

_exporter = InMemorySpanExporter()


def spans_exporter() -> InMemorySpanExporter:
    """The process's tracer provider, set once (OpenTelemetry allows one), feeding our exporter."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    return _exporter


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    wanted = span.parent.span_id if span.parent else None
    return next((s for s in spans if s.context and s.context.span_id == wanted), None)


def test_tracing_is_off_by_default(tmp_path: Path) -> None:
    assert tracing_interceptors(make_settings(tmp_path, "127.0.0.1:1")) == []


async def test_a_run_its_step_and_a_decision_are_spans_of_one_trace(
    tmp_path: Path, temporal_address: str, policy: TetherPolicy
) -> None:
    exporter = spans_exporter()
    settings = make_settings(tmp_path, temporal_address, TETHER_TRACING="1")
    client = await connect(settings)
    run_id = f"traced-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=1.0), extra_workflows=TEST_WORKFLOWS
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="hello"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        await handle.execute_update("decide", decision_for(status))
        result = await handle.result()
    assert result.status == "completed"

    spans = list(exporter.get_finished_spans())
    by_name = {span.name: span for span in spans}
    start = by_name["StartWorkflow:test_one_step"]
    run = by_name["RunWorkflow:test_one_step"]
    step = by_name["RunActivity:tether.checked_llm_step"]
    assert by_name["RunActivity:tether.open_review"]
    decision = by_name["StartWorkflowUpdate:decide"]
    handled = by_name["HandleUpdate:decide"]
    trace_id = start.context.trace_id
    assert {s.context.trace_id for s in (run, step)} == {trace_id}
    assert parent_of(run, spans) is start
    # The run's span -> StartActivity (the workflow schedules the step) -> RunActivity (the
    # step on the worker). The SDK hangs workflow-side spans under the run's incoming context.
    scheduled = parent_of(step, spans)
    assert scheduled is not None and scheduled.name == "StartActivity:tether.checked_llm_step"
    assert parent_of(scheduled, spans) is start
    # The reviewer's decision: its own client span, and the run's validation and handling of it
    # in the run's trace.
    assert decision.context.trace_id != trace_id
    assert parent_of(handled, spans) is start
    assert parent_of(by_name["ValidateUpdate:decide"], spans) is start
    # Spans never carry the prompt or the output.
    for span in spans:
        assert "hello" not in str(dict(span.attributes or {}))
    names = [span.name for span in spans]
    assert names.count("RunWorkflow:test_one_step") == 1, "replays make no second run span"
