"""The engine on the real Temporal dev server: steps, retries, failures, the confidence gate."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import Session
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)

from policies.guard_routing import BreakerPolicy
from policies.models import ModelPrice, RuleCheck, TetherPolicy, WorkflowPolicy
from tests.fakes.provider_server import FakeProviderServer
from tests.policy_variants import for_workflow, gated, judging_always, routed, step_policy
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tether.contracts import DecisionReceipt, ReviewDecision, RunStatus
from tether.core.settings import Settings
from tether.demo_data import sample_document
from tether.store.engine import get_engine
from tether.store.ledger import entries_for_run, run_spend
from tether.worker import running_worker
from workflows.document_summary_steps import Document, SummaryResult
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration

GPT = "openai/gpt-4o-mini"


def openai_settings(
    tmp_path: Path,
    temporal_address: str,
    provider_server: FakeProviderServer,
    key: str | None = None,
) -> Settings:
    """Settings whose OpenAI provider is the fake server (with its key, unless ``key``)."""
    from tests.conftest import make_settings

    return make_settings(
        tmp_path,
        temporal_address,
        OPENAI_API_KEY=key or provider_server.openai_api_key,
        OPENAI_BASE_URL=provider_server.openai_base_url,
    )


def ledger(settings: Settings, run_id: str) -> list:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return entries_for_run(session, run_id)


async def wait_for_pending(
    client: Client, run_id: str, timeout_s: float = 20.0, after: RunStatus | None = None
) -> RunStatus:
    """The run's status once a review is pending (a new one, when ``after`` had one)."""
    import asyncio

    earlier = after.pending.review_id if after is not None and after.pending else None
    handle = client.get_workflow_handle(run_id)
    for _ in range(int(timeout_s / 0.1)):
        status = await handle.query("status", result_type=RunStatus)
        if status.pending is not None and status.pending.review_id != earlier:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} never paused for review: {status}")


def decision_for(status: RunStatus, **fields: object) -> ReviewDecision:
    assert status.pending is not None
    base: dict[str, object] = {
        "review_id": status.pending.review_id,
        "kind": "approve",
        "reviewer": "bob",
        "reviewer_roles": ["reviewer", "lead"],
        "output_digest": status.pending.output_digest,
    }
    return ReviewDecision.model_validate(base | fields)


def with_classify_rules(policy: TetherPolicy, *rules: RuleCheck) -> TetherPolicy:
    """support_triage's classify step checked by ``rules`` instead of the default ones."""
    triage = policy.workflows["support_triage"]
    classify = triage.steps["classify"].model_copy(update={"rules": list(rules)})
    override = triage.model_copy(update={"steps": triage.steps | {"classify": classify}})
    return for_workflow(policy, "support_triage", override)


async def test_three_step_workflow_completes_with_confidence_and_cost(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    # One rule the refund ticket's classification passes, one it breaks: the rules signal is the
    # share that passed, and the broken rule is named to the reviewer.
    checked = with_classify_rules(
        judging_always(policy),
        RuleCheck(name="is_billing", field="category", one_of=["billing"]),
        RuleCheck(name="is_technical", field="category", one_of=["technical"]),
    )
    async with running_worker(client, settings, policy=gated(checked, accept=0.0)):
        result = await client.execute_workflow(
            "support_triage",
            Ticket(
                subject="Charged twice",
                body="I was charged twice for order 1234 and the invoice shows both payments. "
                "Please refund the duplicate charge.",
            ),
            id=f"triage-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
            result_type=TriageResult,
        )
    assert result.status == "completed"
    assert [s.name for s in result.steps] == ["classify", "extract", "draft_reply"]
    assert all(s.state == "done" and s.confidence is not None for s in result.steps)
    assert all(s.model and s.model.startswith("simulated/") and s.simulated for s in result.steps)
    assert result.category == "billing", "a double charge and a refund are a billing ticket"
    assert result.facts is not None
    assert result.reply
    assert result.cost_usd > 0
    assert result.cost_usd == pytest.approx(sum(s.cost_usd for s in result.steps), rel=1e-6)
    classify = result.steps[0].confidence
    assert classify is not None
    signals = {c.name: c.value for c in classify.components}
    # The default policy samples classify three times and asks an LLM judge.
    assert {"schema_validity", "logprobs", "self_consistency", "judge", "rules"} <= set(signals)
    assert signals["rules"] == 0.5
    assert "rule is_technical failed" in classify.reasons
    assert not any("is_billing" in reason for reason in classify.reasons)


async def test_a_long_document_is_summarised_chunk_by_chunk_and_every_chunk_is_charged(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"doc-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, settings, policy=gated(policy, accept=0.0)):
        result = await client.execute_workflow(
            "document_summary",
            Document(document=sample_document(40), title="Quarterly report"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=SummaryResult,
        )
    assert result.status == "completed" and result.summary
    assert result.chunks > 1
    rows = ledger(settings, run_id)
    # The same step runs once per chunk; each run's calls are keyed (and charged) apart.
    chunk_calls = [r for r in rows if r.step == "summarize_chunk" and r.call == "main"]
    assert len(chunk_calls) == result.chunks
    assert [s.name for s in result.steps] == ["summarize_chunk"] * result.chunks + ["final_summary"]
    assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))


async def test_provider_failing_twice_is_retried_and_every_attempt_is_in_the_ledger(
    client: Client,
    tmp_path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    provider_server.script(fail_with=503, times=2)
    run_id = f"retry-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client,
        settings,
        policy=gated(routed(judging_always(policy), [GPT]), accept=0.0),
        extra_workflows=TEST_WORKFLOWS,
    ):
        result = await client.execute_workflow(
            "test_one_step",
            Question(text="What is 2+2?"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
    assert result.status == "completed"
    rows = ledger(settings, run_id)
    assert [(r.activity_attempt, r.call, r.outcome) for r in rows] == [
        (1, "main", "error"),
        (2, "main", "error"),
        (3, "main", "ok"),
        (3, "judge", "ok"),  # the default policy asks an LLM judge; that call is counted too
    ]
    assert all(r.model == GPT and r.provider == "openai" for r in rows)
    assert "503" in (rows[0].error or "")
    assert len(provider_server.requests) == 4
    assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))


@contextlib.contextmanager
def store_write_locked(settings: Settings) -> Iterator[None]:
    """Another writer holds the SQLite store's write lock for the block."""
    database = make_url(settings.resolved_database_url).database
    assert database is not None
    locker = sqlite3.connect(database, timeout=30, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


async def start_one_step(client: Client, settings: Settings, run_id: str) -> WorkflowHandle:
    return await client.start_workflow(
        "test_one_step", Question(text="What is 2+2?"), id=run_id, task_queue=settings.task_queue
    )


async def test_a_step_kept_waiting_before_its_model_call_keeps_its_attempt(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    # Another writer holds the store's write lock for 6 s as the step starts: the step waits for
    # it before its model call (to hold its cost), longer than its 3 s heartbeat timeout. It
    # heartbeats while it waits, so Temporal neither times it out nor starts a second attempt
    # beside it (which would ask the model again).
    run_id = f"waits-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=0.0), extra_workflows=TEST_WORKFLOWS
    ):
        with store_write_locked(settings):
            handle = await start_one_step(client, settings, run_id)
            await asyncio.sleep(6)
        result = await handle.result()
        history = await handle.fetch_history()
    assert result["status"] == "completed"
    assert not [e for e in history.events if e.HasField("activity_task_timed_out_event_attributes")]
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1]
    assert [r.call for r in ledger(settings, run_id) if r.call == "main"] == ["main"]


async def test_a_run_cancelled_while_its_step_waits_for_its_hold_keeps_no_cost_held(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    # The step waits on the store's write lock to hold its cost when the run is cancelled. The
    # hold is still written once the lock frees; nothing was sent, so it must be given back,
    # not left reserved against the run's, user's and tenant's budgets.
    run_id = f"cut-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=0.0), extra_workflows=TEST_WORKFLOWS
    ):
        with store_write_locked(settings):
            handle = await start_one_step(client, settings, run_id)
            await asyncio.sleep(4)
            await handle.cancel()
            await asyncio.sleep(1)
        for _ in range(40):  # the cancelled attempt writes its hold once the lock frees
            await asyncio.sleep(0.25)
            with Session(get_engine(settings.resolved_database_url)) as session:
                spent, reserved = run_spend(session, run_id)
            if reserved == 0 and _ > 8:
                break
        await handle.terminate("test over")
    assert reserved == 0, "no cost left held for a cancelled run"
    assert spent == 0 and ledger(settings, run_id) == [], "the model was never asked"


async def test_samples_and_judge_are_asked_at_once(
    client: Client,
    tmp_path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    # Every answer takes a while: calls asked one after another never overlap.
    provider_server.script(delay_s=0.3, times=4)
    sampled = for_workflow(
        gated(routed(judging_always(policy), [GPT]), accept=0.0),
        "test_one_step",
        WorkflowPolicy(steps={"answer": step_policy(samples=3, judge=True)}),
    )
    run_id = f"sampled-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, settings, policy=sampled, extra_workflows=TEST_WORKFLOWS):
        result = await client.execute_workflow(
            "test_one_step",
            Question(text="What is 2+2?"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
    assert result.status == "completed"
    # The answer first, then its 2 extra samples and the judge together.
    assert len(provider_server.requests) == 4
    assert provider_server.max_in_flight == 3
    calls = sorted(r.call for r in ledger(settings, run_id))
    assert calls == ["judge", "main", "sample-1", "sample-2"]


async def test_the_judge_is_asked_only_when_its_score_could_change_the_outcome(
    client: Client,
    tmp_path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    # The shipped weights and thresholds (accept 0.75) with one rule the answer passes.
    assert policy.confidence.judge_when == "decisive"
    checked = for_workflow(
        routed(policy, [GPT]),
        "test_one_step",
        WorkflowPolicy(
            steps={
                "answer": step_policy(
                    judge=True, rules=[RuleCheck(name="said", field="answer", min_length=1)]
                )
            }
        ),
    )
    answer = {"answer": "4", "sure": True}
    # A sure answer scores 0.80 .. 0.99 with a judge (0.996 without one): accepted either way.
    provider_server.script(answer=answer, logprobs=[-0.01] * 12)
    # An unsure one scores 0.61 .. 0.81: the judge decides, and says 0.9.
    provider_server.script(answer=answer, logprobs=[-1.0] * 12)
    provider_server.script(answer={"score": 0.9, "reason": "right"})
    results = []
    async with running_worker(client, settings, policy=checked, extra_workflows=TEST_WORKFLOWS):
        for _ in range(2):
            run_id = f"judged-{uuid.uuid4().hex[:8]}"
            result = await client.execute_workflow(
                "test_one_step",
                Question(text="What is 2+2?"),
                id=run_id,
                task_queue=settings.task_queue,
                result_type=OneStepResult,
            )
            results.append((run_id, result))

    (sure_id, sure), (unsure_id, unsure) = results
    assert sure.status == "completed" and unsure.status == "completed"
    assert [r.call for r in ledger(settings, sure_id)] == ["main"]
    assert [r.call for r in ledger(settings, unsure_id)] == ["main", "judge"]
    assert len(provider_server.requests) == 3
    sure_confidence, unsure_confidence = sure.steps[0].confidence, unsure.steps[0].confidence
    assert sure_confidence is not None and unsure_confidence is not None
    assert "judge" not in {c.name for c in sure_confidence.components}
    assert sure_confidence.outcome == "accept" and sure_confidence.score == pytest.approx(
        0.996, abs=1e-3
    )
    assert any("judge not asked" in reason for reason in sure_confidence.reasons)
    judged = {c.name: c.value for c in unsure_confidence.components}
    assert judged["judge"] == 0.9 and unsure_confidence.outcome == "accept"


async def test_rejected_request_fails_fast_with_a_clear_message(
    client: Client,
    tmp_path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server, key="sk-wrong-key")
    run_id = f"reject-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=routed(policy, [GPT]), extra_workflows=TEST_WORKFLOWS
    ):
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                "test_one_step", Question(text="hi"), id=run_id, task_queue=settings.task_queue
            )
    message = str(failure.value.cause)
    assert "answer" in message and GPT in message and "401" in message
    assert "sk-wrong-key" not in message
    assert len(provider_server.requests) == 1, "a rejected request must not be retried"
    assert [r.outcome for r in ledger(settings, run_id)] == ["error"]


def held_usd(settings: Settings, run_id: str) -> float:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return run_spend(session, run_id)[1]


async def test_a_model_failing_every_retry_falls_back_to_the_next_in_the_route(
    client: Client,
    tmp_path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    provider_server.script(fail_with=503, times=4)  # every attempt the step's policy allows
    run_id = f"fallback-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client,
        settings,
        policy=gated(routed(policy, [GPT, "simulated/cheap"]), accept=0.0),
        extra_workflows=TEST_WORKFLOWS,
    ):
        result = await client.execute_workflow(
            "test_one_step",
            Question(text="What is 2+2?"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
    assert result.status == "completed" and result.answer
    assert result.steps[0].model == "simulated/cheap"
    calls = [(r.model, r.call, r.outcome) for r in ledger(settings, run_id)]
    assert calls[:5] == [(GPT, "main", "error")] * 4 + [("simulated/cheap", "main", "ok")]
    assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in ledger(settings, run_id)))
    assert held_usd(settings, run_id) == 0, "every reservation is released when the step ends"


async def test_when_every_model_fails_a_human_retries_or_rejects_and_every_call_is_charged(
    client: Client,
    tmp_path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    provider_server.script(fail_with=503, times=8)  # two passes over a one-model route
    run_id = f"all-failed-{uuid.uuid4().hex[:8]}"
    # A breaker that stays closed through both passes (one that opens is tested apart:
    # tests/workflows/test_provider_guards.py).
    patient = policy.provider_health.model_copy(
        update={"breaker": BreakerPolicy(failure_threshold=20)}
    )
    async with running_worker(
        client,
        settings,
        policy=gated(routed(policy, [GPT]), accept=0.0).model_copy(
            update={"provider_health": patient}
        ),
        extra_workflows=TEST_WORKFLOWS,
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="What is 2+2?"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        first = await wait_for_pending(client, run_id)
        assert first.pending is not None and first.pending.reason == "provider_failure"
        await handle.execute_update(
            "decide",
            decision_for(first, kind="retry", retry_mode="with_feedback", feedback="try again"),
            result_type=DecisionReceipt,
        )
        second = await wait_for_pending(client, run_id, after=first)
        await handle.execute_update(
            "decide",
            decision_for(second, kind="reject", reason="provider is down"),
            result_type=DecisionReceipt,
        )
        result = await handle.result()
    assert result.status == "provider_failure"
    assert result.halted_reason is not None and GPT in result.halted_reason
    assert "503" in result.halted_reason
    # The retried pass's calls are charged too, not taken for the first pass's.
    assert [r.outcome for r in ledger(settings, run_id)] == ["error"] * 8
    assert held_usd(settings, run_id) == 0


async def test_low_confidence_pauses_until_a_decision_update_resumes_it(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"gate-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=1.0), extra_workflows=TEST_WORKFLOWS
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Is the sky blue?", requester="alice"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        assert status.state == "awaiting_review"
        assert status.pending is not None and status.pending.reason == "low_confidence"
        assert status.steps[0].confidence is not None and status.steps[0].confidence.score < 1.0

        refusals = {
            "no role": decision_for(status, reviewer="carol", reviewer_roles=["viewer"]),
            "own item": decision_for(status, reviewer="alice", reviewer_roles=["reviewer"]),
            "stale": decision_for(status, output_digest="sha256:" + "0" * 64),
            "no reason": decision_for(status, kind="reject"),
            "bad edit": decision_for(status, kind="edit", edited_output={"answer": "yes"}),
        }
        for label, bad in refusals.items():
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update("decide", bad, result_type=DecisionReceipt)
            assert (await handle.query("status", result_type=RunStatus)).pending is not None, label

        edited = {"answer": "Yes, on a clear day.", "sure": True}
        receipt = await handle.execute_update(
            "decide",
            decision_for(status, kind="edit", edited_output=edited),
            result_type=DecisionReceipt,
        )
        assert receipt.kind == "edit" and receipt.reviewer == "bob"
        with pytest.raises(WorkflowUpdateFailedError) as again:
            await handle.execute_update("decide", decision_for(status), result_type=DecisionReceipt)
        assert "already decided" in str(again.value.cause)
        result = await handle.result()
    assert result.status == "completed"
    assert result.answer == "Yes, on a clear day."
    assert result.disposition == "edited"
    assert result.steps[0].decision == "edit"


async def test_reviewer_rejection_stops_the_run_with_the_reason(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"gate-reject-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=1.0), extra_workflows=TEST_WORKFLOWS
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Tell me a secret"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        await handle.execute_update(
            "decide",
            decision_for(status, kind="reject", reason="off-topic"),
            result_type=DecisionReceipt,
        )
        result = await handle.result()
    assert result.status == "rejected"
    assert result.halted_step == "answer"
    assert result.halted_reason is not None and "off-topic" in result.halted_reason


async def test_reviewer_retry_on_the_strong_model_reruns_the_step(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"gate-retry-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=1.0), extra_workflows=TEST_WORKFLOWS
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Summarise the plot of Hamlet"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        first = await wait_for_pending(client, run_id)
        await handle.execute_update(
            "decide",
            decision_for(first, kind="retry", retry_mode="strong_model"),
            result_type=DecisionReceipt,
        )
        second = await wait_for_pending_new(client, run_id, first.pending.review_id)  # type: ignore[union-attr]
        assert second.steps[0].model == "simulated/strong"
        await handle.execute_update("decide", decision_for(second), result_type=DecisionReceipt)
        result = await handle.result()
    assert result.status == "completed" and result.disposition == "approved"
    calls = [(r.model, r.call) for r in ledger(settings, run_id) if r.call == "main"]
    assert [m for m, _ in calls] == ["simulated/cheap", "simulated/strong"]


async def wait_for_pending_new(client: Client, run_id: str, previous: str) -> RunStatus:
    import asyncio

    handle = client.get_workflow_handle(run_id)
    for _ in range(200):
        status = await handle.query("status", result_type=RunStatus)
        if status.pending is not None and status.pending.review_id != previous:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError("no second review opened")


def test_unpriced_models_are_refused_by_the_policy(policy: TetherPolicy) -> None:
    from policies.pricing import cost_usd
    from policies.values import Usage
    from tether.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="openai/unknown"):
        cost_usd(policy.prices, "openai/unknown", Usage(input_tokens=1))
    assert cost_usd(
        {"m/x": ModelPrice(input_per_mtok=1, output_per_mtok=2)},
        "m/x",
        Usage(input_tokens=1_000_000, output_tokens=500_000),
    ) == pytest.approx(2.0)
