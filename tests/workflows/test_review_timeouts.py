"""Review timeouts are policy: remind, escalate to another role, then the default action, each
recorded in the audit log. Short policy durations keep this on the real dev server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlmodel import Session
from temporalio.client import Client

from policies.models import ReviewPolicy, ReviewTimeouts, TetherPolicy
from tests.policy_variants import gated
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import decision_for, wait_for_pending
from tether.contracts import DecisionReceipt, RunStatus
from tether.core.settings import Settings
from tether.store.audit import events_for, verify_chain
from tether.store.engine import get_engine
from tether.store.reviews import get_review
from tether.worker import running_worker

pytestmark = pytest.mark.integration


def with_timeouts(policy: TetherPolicy, default_action: str) -> TetherPolicy:
    review = ReviewPolicy(
        roles=["support"],
        timeouts=ReviewTimeouts(
            remind_after=timedelta(seconds=1),
            escalate_after=timedelta(seconds=2),
            escalate_to_role="lead",
            default_after=timedelta(seconds=3),
            default_action=default_action,  # type: ignore[arg-type]
        ),
    )
    return gated(policy.model_copy(update={"review": review}), accept=1.0)


def audit_kinds(settings: Settings, run_id: str) -> list[str]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        assert verify_chain(session) is None
        return [e.kind for e in events_for(session, run_id=run_id) if e.kind.startswith("review_")]


@pytest.mark.parametrize(
    ("default_action", "status"),
    [("approve", "completed"), ("reject", "rejected"), ("fail", "expired")],
)
async def test_remind_escalate_then_default_action(
    client: Client, settings: Settings, policy: TetherPolicy, default_action: str, status: str
) -> None:
    run_id = f"timeout-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client,
        settings,
        policy=with_timeouts(policy, default_action),
        extra_workflows=TEST_WORKFLOWS,
    ):
        result = await asyncio.wait_for(
            client.execute_workflow(
                "test_one_step",
                Question(text="Approve my refund?"),
                id=run_id,
                task_queue=settings.task_queue,
                result_type=OneStepResult,
            ),
            timeout=60,
        )
    assert result.status == status
    assert result.halted_step == (None if default_action == "approve" else "answer")
    kinds = audit_kinds(settings, run_id)
    timed_out = ["review_opened", "review_remind", "review_escalate", "review_default"]
    with Session(get_engine(settings.resolved_database_url)) as session:
        item = get_review(session, f"{run_id}:answer:1")
        assert item is not None and item.reminded and item.escalated
        assert "lead" in item.allowed_roles
        if default_action == "fail":
            # Nobody decided: the run fails, and the item leaves the pending queue as failed.
            assert kinds == timed_out
            assert item.status == "failed"
            assert item.decision_reason == (
                "no decision within 3s: policy default is fail; the run fails"
            )
            assert item.decision is None and item.decided_via is None and item.reviewer is None
            assert result.halted_reason == "no decision within 3s"
            assert result.disposition is None and result.answer is None
        else:
            assert kinds == [*timed_out, "review_decided"]
            assert item.decided_via == "timeout" and item.decision == default_action
            assert item.status == "defaulted"
            assert item.reviewer == "tether (timeout policy)"


async def test_escalation_lets_the_escalation_role_decide(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"escalate-{uuid.uuid4().hex[:8]}"
    slow = with_timeouts(policy, "fail")
    timeouts = slow.review.timeouts.model_copy(update={"default_after": timedelta(minutes=5)})
    slow = slow.model_copy(update={"review": slow.review.model_copy(update={"timeouts": timeouts})})
    async with running_worker(client, settings, policy=slow, extra_workflows=TEST_WORKFLOWS):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Escalate me"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        assert status.pending is not None and status.pending.allowed_roles == ["support"]
        lead_only = decision_for(status, reviewer="bob", reviewer_roles=["lead"])
        for _ in range(60):
            status = await handle.query("status", result_type=RunStatus)
            if status.pending and "lead" in status.pending.allowed_roles:
                break
            await asyncio.sleep(0.1)
        assert status.pending is not None and "lead" in status.pending.allowed_roles
        await handle.execute_update("decide", lead_only, result_type=DecisionReceipt)
        result = await handle.result()
    assert result.status == "completed" and result.disposition == "approved"
