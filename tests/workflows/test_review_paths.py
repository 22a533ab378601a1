"""End to end on the real dev server: invalid output and its repairs, a reviewer's feedback, a
review that expired, and a gate that blocks. Model answers come from the fake OpenAI server, so
each test scripts exactly what the model says and reads exactly what it was asked."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError

from activities.providers.simulated import REPAIR_PREFIX
from policies.models import Reviewer, ReviewPolicy, ReviewTimeouts, TetherPolicy
from policies.pricing import cost_usd
from policies.values import Usage
from review_ui.deciding import may_decide
from tests.fakes.provider_server import FakeProviderServer, RecordedRequest
from tests.policy_variants import gated, judging_always, routed
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import (
    GPT,
    decision_for,
    ledger,
    openai_settings,
    wait_for_pending,
)
from tether.contracts import DecisionReceipt, RunStatus
from tether.core.settings import Settings
from tether.store.audit import events_for
from tether.store.engine import get_engine
from tether.store.reviews import ReviewItem, get_review
from tether.worker import running_worker

pytestmark = pytest.mark.integration

# The test workflow's output model is Answer(answer: str, sure: bool): this one lacks ``sure``.
INVALID = {"answer": "4"}


def answer_requests(server: FakeProviderServer) -> list[RecordedRequest]:
    """The requests that asked for the step's answer (not the judge's verdict), oldest first."""
    return [
        r for r in server.requests if r.json["response_format"]["json_schema"]["name"] == "Answer"
    ]


def user_messages(request: RecordedRequest) -> list[str]:
    return [m["content"] for m in request.json["messages"] if m["role"] == "user"]


def review_item(settings: Settings, review_id: str) -> ReviewItem:
    with Session(get_engine(settings.resolved_database_url)) as session:
        item = get_review(session, review_id)
    assert item is not None, f"no review item {review_id}"
    return item


def audit_kinds(settings: Settings, run_id: str) -> list[str]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return [e.kind for e in events_for(session, run_id=run_id)]


def charged_at_list_price(policy: TetherPolicy, settings: Settings, run_id: str) -> float:
    """Every ledger row of the run costs its model's price for its tokens; returns the total."""
    rows = ledger(settings, run_id)
    for row in rows:
        usage = Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens)
        assert row.cost_usd > 0
        assert row.cost_usd == pytest.approx(cost_usd(policy.prices, row.model, usage))
    return sum(row.cost_usd for row in rows)


async def start_one_step(
    client: Client, settings: Settings, run_id: str, text: str = "What is 2+2?"
) -> Any:
    return await client.start_workflow(
        "test_one_step",
        Question(text=text, requester="alice"),
        id=run_id,
        task_queue=settings.task_queue,
        result_type=OneStepResult,
    )


async def test_an_invalid_answer_is_repaired_and_the_repair_is_counted_and_charged(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    provider_server.script(answer=INVALID)  # the first answer; the repair is answered validly
    run_id = f"repair-{uuid.uuid4().hex[:8]}"
    gpt = gated(routed(judging_always(policy), [GPT]), accept=0.0)
    async with running_worker(client, settings, policy=gpt, extra_workflows=TEST_WORKFLOWS):
        handle = await start_one_step(client, settings, run_id)
        result = await handle.result()

    assert result.status == "completed" and result.disposition == "accepted"
    asked = answer_requests(provider_server)
    assert len(asked) == 2
    # The repair re-asks with the invalid answer and what was wrong with it.
    repair = asked[1].json["messages"]
    assert repair[:2] == asked[0].json["messages"]
    assert repair[2] == {"role": "assistant", "content": json.dumps(INVALID)}
    assert repair[3]["role"] == "user" and repair[3]["content"].startswith(REPAIR_PREFIX)
    assert "sure: Field required" in repair[3]["content"]

    rows = ledger(settings, run_id)
    assert [(r.call, r.activity_attempt, r.outcome) for r in rows] == [
        ("main", 1, "invalid_output"),
        ("repair-1", 1, "ok"),
        ("judge", 1, "ok"),
    ]
    total = charged_at_list_price(gpt, settings, run_id)
    assert result.cost_usd == pytest.approx(total), "the invalid answer is charged too"
    confidence = result.steps[0].confidence
    assert confidence is not None
    schema = next(c for c in confidence.components if c.name == "schema_validity")
    assert schema.detail == "valid after 1 repair"
    assert schema.value == pytest.approx(1 - 1 / 3)  # one of max_repairs=2 used
    assert "1 repair needed" in confidence.reasons


async def test_when_repairs_run_out_the_output_goes_to_a_reviewer(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    provider_server.script(answer=INVALID, times=3)  # the answer and both repairs the policy allows
    run_id = f"repairs-out-{uuid.uuid4().hex[:8]}"
    # accept=0: only the invalid output, never the confidence score, can send it to review.
    gpt = gated(routed(policy, [GPT]), accept=0.0)
    async with running_worker(client, settings, policy=gpt, extra_workflows=TEST_WORKFLOWS):
        handle = await start_one_step(client, settings, run_id)
        status = await wait_for_pending(client, run_id)
        assert status.pending is not None and status.pending.reason == "invalid_output"
        assert status.steps[0].state == "awaiting_review"
        item = review_item(settings, status.pending.review_id)
        assert item.status == "pending" and item.reason == "invalid_output"
        assert item.output is None and item.raw_output == json.dumps(INVALID)
        assert "after 2 repairs" in item.summary and "sure: Field required" in item.summary

        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("decide", decision_for(status), result_type=DecisionReceipt)
        assert "the model output is invalid" in str(refused.value.cause)
        fixed = {"answer": "4", "sure": True}
        await handle.execute_update(
            "decide",
            decision_for(status, kind="edit", edited_output=fixed),
            result_type=DecisionReceipt,
        )
        result = await handle.result()

    assert result.status == "completed"
    assert result.disposition == "edited" and result.answer == "4"
    assert len(answer_requests(provider_server)) == 3, "no more repairs than the policy allows"
    rows = ledger(settings, run_id)
    assert [(r.call, r.outcome) for r in rows] == [
        ("main", "invalid_output"),
        ("repair-1", "invalid_output"),
        ("repair-2", "invalid_output"),
    ]
    assert result.cost_usd == pytest.approx(charged_at_list_price(gpt, settings, run_id))
    assert review_item(settings, status.pending.review_id).status == "edited"


async def test_a_reviewers_feedback_reaches_the_prompt_of_the_retried_step(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    run_id = f"feedback-{uuid.uuid4().hex[:8]}"
    feedback = "Give the answer in French, please."
    gpt = gated(routed(policy, [GPT]), accept=1.0)  # every answer waits for a reviewer
    async with running_worker(client, settings, policy=gpt, extra_workflows=TEST_WORKFLOWS):
        handle = await start_one_step(client, settings, run_id)
        first = await wait_for_pending(client, run_id)
        before = len(answer_requests(provider_server))
        await handle.execute_update(
            "decide",
            decision_for(first, kind="retry", retry_mode="with_feedback", feedback=feedback),
            result_type=DecisionReceipt,
        )
        second = await wait_for_pending(client, run_id, after=first)
        await handle.execute_update("decide", decision_for(second), result_type=DecisionReceipt)
        result = await handle.result()

    assert result.status == "completed" and result.disposition == "approved"
    asked = answer_requests(provider_server)
    assert before == 1 and len(asked) == 2
    assert not any(feedback in text for text in user_messages(asked[0]))
    [retried] = user_messages(asked[1])
    # The run input is untrusted, so it arrives fenced; the reviewer's feedback is not.
    assert retried.startswith("<<<BEGIN TEXT_") and "\nWhat is 2+2?\n<<<END TEXT_" in retried
    assert retried.endswith(f"A reviewer asked for changes to an earlier answer:\n{feedback}")
    item = review_item(settings, first.pending.review_id)  # type: ignore[union-attr]
    assert item.status == "retried" and item.decision_reason == feedback


def expiring(policy: TetherPolicy, after: timedelta) -> TetherPolicy:
    """Every answer goes to a reviewer, and the review expires ``after`` it opens."""
    quiet = ReviewTimeouts(remind_after=None, escalate_after=None, default_after=None)
    review = ReviewPolicy(roles=["reviewer"], expires_after=after, timeouts=quiet)
    return gated(policy.model_copy(update={"review": review}), accept=1.0)


async def test_a_decision_that_arrives_after_the_review_expired_is_refused(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"expired-{uuid.uuid4().hex[:8]}"
    short = expiring(policy, timedelta(seconds=2))
    async with running_worker(client, settings, policy=short, extra_workflows=TEST_WORKFLOWS):
        handle = await start_one_step(client, settings, run_id)
        status = await wait_for_pending(client, run_id)
    # No worker now, so nothing acts on the expiry timer until the decision has arrived.
    assert status.pending is not None
    wait_s = (status.pending.expires_at - datetime.now(UTC)).total_seconds() + 0.5
    await asyncio.sleep(max(wait_s, 0.0))
    late = asyncio.create_task(
        handle.execute_update("decide", decision_for(status), result_type=DecisionReceipt)
    )
    await asyncio.sleep(1.0)  # the server holds the decision for the next worker
    async with running_worker(client, settings, policy=short, extra_workflows=TEST_WORKFLOWS):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(late, timeout=30)
        result = await handle.result()

    assert "expired" in str(refused.value.cause)
    assert result.status == "expired" and result.halted_step == "answer"
    assert result.disposition is None and result.answer is None
    item = review_item(settings, status.pending.review_id)
    assert item.status == "expired" and item.decision is None and item.reviewer is None
    # The review desk refuses it before it reaches the workflow, too.
    bob = Reviewer(name="bob", password="-", roles=["reviewer"])
    problem = may_decide(bob, item)
    assert problem is not None and "expired" in problem
    assert "review_decided" not in audit_kinds(settings, run_id)


async def test_a_blocked_step_halts_the_run_without_asking_anyone(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"blocked-{uuid.uuid4().hex[:8]}"
    # Every threshold at 1.0: a score below it is not reviewed or escalated but blocked.
    strict = gated(policy, accept=1.0, review=1.0, escalate=1.0)
    async with running_worker(client, settings, policy=strict, extra_workflows=TEST_WORKFLOWS):
        handle = await start_one_step(client, settings, run_id)
        result = await asyncio.wait_for(handle.result(), timeout=60)
        status = await handle.query("status", result_type=RunStatus)

    assert result.status == "blocked"
    assert result.halted_step == "answer"
    assert result.answer is None and result.disposition is None
    confidence = result.steps[0].confidence
    assert confidence is not None and confidence.outcome == "block" and confidence.score < 1.0
    assert result.halted_reason is not None
    assert result.halted_reason.startswith(f"confidence {confidence.score:.2f} blocked (")
    assert result.steps[0].state == "failed"
    assert status.state == "failed" and status.pending is None
    assert "review_opened" not in audit_kinds(settings, run_id), "nobody is asked"
    # What the blocked step cost is still charged: its answer and its judge.
    # No judge score could have lifted it out of "block": the judge was not asked.
    assert [r.call for r in ledger(settings, run_id)] == ["main"]
    assert result.cost_usd == pytest.approx(charged_at_list_price(strict, settings, run_id))
