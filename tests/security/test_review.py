"""Attacks on the review lifecycle (issue 9, item 5), each tried the way a caller would.

- An item a timeout ended (the review expired, the policy's default failed the run, or its
  default action was taken) leaves the pending queue as expired / failed / defaulted, with the
  reason shown in the API, the queue and the detail page; the ``expired`` filter shows them all.
- A step the confidence gate escalates goes to the policy's escalation role (and channel) at
  once: an ordinary reviewer cannot decide it.
- A decision kind the item does not offer (an edit of a provider failure, which has no output
  and no schema) is refused by the workflow's validator and by the API (409 with the reason).
"""

from __future__ import annotations

import html
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError

from policies.models import ReviewPolicy, ReviewTimeouts, TetherPolicy
from review_ui.app import create_app
from tests.fakes.provider_server import FakeProviderServer
from tests.policy_variants import gated, routed
from tests.review_ui.conftest import BOB, UiServer, login
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import GPT, decision_for, openai_settings, wait_for_pending
from tether.contracts import DecisionReceipt, RunStatus
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.reviews import get_review
from tether.worker import running_worker

pytestmark = pytest.mark.integration


async def test_an_edit_of_a_provider_failure_is_refused_by_the_workflow_and_the_api(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    provider_server.script(fail_with=503, times=4)  # every attempt of the only model
    run_id = f"no-edit-{uuid.uuid4().hex[:8]}"
    failing = gated(routed(policy, [GPT]), accept=0.0)
    ui = UiServer(create_app(settings, policy=failing)).start()
    try:
        async with running_worker(client, settings, policy=failing, extra_workflows=TEST_WORKFLOWS):
            handle = await client.start_workflow(
                "test_one_step",
                Question(text="What is 2+2?"),
                id=run_id,
                task_queue=settings.task_queue,
                result_type=OneStepResult,
            )
            status = await wait_for_pending(client, run_id)
            assert status.pending is not None and status.pending.reason == "provider_failure"
            edit = decision_for(status, kind="edit", edited_output={"answer": "4", "sure": True})
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("decide", edit, result_type=DecisionReceipt)
            assert "nothing to edit" in str(refused.value.cause)

            async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as api:
                response = await api.post(
                    f"/api/reviews/{status.pending.review_id}/decision",
                    json={
                        "kind": "edit",
                        "output_digest": status.pending.output_digest,
                        "edited_output": {"answer": "4", "sure": True},
                    },
                )
            assert response.status_code == 409, response.text
            assert "edit is not one of them" in response.json()["message"]
            # Still waiting, undecided: the refused edit changed nothing.
            after = await handle.query("status", result_type=RunStatus)
            assert after.pending is not None
            assert after.pending.review_id == status.pending.review_id
            await handle.execute_update(
                "decide",
                decision_for(status, kind="reject", reason="down"),
                result_type=DecisionReceipt,
            )
            result = await handle.result()
        assert result.status == "provider_failure"
    finally:
        ui.stop()


def _timing_out(policy: TetherPolicy, ends: str) -> TetherPolicy:
    """Every step paused for review; the review ends by a timeout after 2s, as ``ends`` says."""
    timeouts = ReviewTimeouts(
        remind_after=None,
        escalate_after=None,
        default_after=None if ends == "expired" else timedelta(seconds=2),
        default_action={"expired": "fail", "failed": "fail", "defaulted": "reject"}[ends],  # type: ignore[arg-type]
    )
    expires = timedelta(seconds=2) if ends == "expired" else timedelta(days=7)
    review = ReviewPolicy(roles=["reviewer"], expires_after=expires, timeouts=timeouts)
    return gated(policy.model_copy(update={"review": review}), accept=1.0)


@pytest.mark.parametrize(
    ("ends", "reason"),
    [
        ("expired", "no decision within 2s: the review expired; the run fails"),
        ("failed", "no decision within 2s: policy default is fail; the run fails"),
        ("defaulted", "no decision within 2s; policy default is reject"),
    ],
)
async def test_an_item_a_timeout_ended_leaves_the_queue_saying_why(
    client: Client, settings: Settings, policy: TetherPolicy, ends: str, reason: str
) -> None:
    run_id = f"timed-out-{uuid.uuid4().hex[:8]}"
    timing_out = _timing_out(policy, ends)
    ui = UiServer(create_app(settings, policy=timing_out)).start()
    try:
        async with running_worker(
            client, settings, policy=timing_out, extra_workflows=TEST_WORKFLOWS
        ):
            result = await client.execute_workflow(
                "test_one_step",
                Question(text="Anyone there?"),
                id=run_id,
                task_queue=settings.task_queue,
                result_type=OneStepResult,
                execution_timeout=timedelta(seconds=60),
            )
        assert result.status == ("rejected" if ends == "defaulted" else "expired")
        review_id = f"{run_id}:answer:1"
        async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as api:
            pending = (await api.get("/api/reviews", params={"status": "pending"})).json()
            assert review_id not in [i["review_id"] for i in pending["items"]]
            for status in (ends, "expired"):  # its own filter, and "expired": every timeout
                listed = (await api.get("/api/reviews", params={"status": status})).json()
                [row] = [i for i in listed["items"] if i["review_id"] == review_id]
                assert row["status"] == ends and row["decision_reason"] == reason
            detail = (await api.get(f"/api/reviews/{review_id}")).json()
            assert detail["status"] == ends and detail["decision_reason"] == reason
            await login(api, *BOB)
            api.auth = None
            page = await api.get(f"/reviews/{review_id}")
            assert f'status-badge status-{ends}">{ends}<' in page.text
            assert html.escape(reason) in page.text
            queue = await api.get("/", params={"status": "expired"})
            assert html.escape(reason) in queue.text
    finally:
        ui.stop()


async def test_an_escalated_step_goes_to_the_escalation_role_at_once(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    timeouts = policy.review.timeouts.model_copy(
        update={"escalate_to_role": "lead", "escalate_to_channel": "#leads"}
    )
    review = policy.review.model_copy(update={"roles": ["reviewer"], "timeouts": timeouts})
    # Below the review threshold, above the escalation one: the gate escalates every step.
    escalating = gated(policy.model_copy(update={"review": review}), accept=1.0, review=1.0)
    run_id = f"escalated-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, settings, policy=escalating, extra_workflows=TEST_WORKFLOWS):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Refund?"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        assert status.pending is not None and status.pending.reason == "escalated"
        assert status.pending.allowed_roles == ["lead"], "not an ordinary review first"
        with Session(get_engine(settings.resolved_database_url)) as session:
            item = get_review(session, status.pending.review_id)
            assert item is not None and item.escalated and item.allowed_roles == ["lead"]
            assert item.slack_channel == "#leads"
        ordinary = decision_for(status, reviewer="alice", reviewer_roles=["reviewer"])
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("decide", ordinary, result_type=DecisionReceipt)
        assert "needs one of the roles lead" in str(refused.value.cause)
        lead = decision_for(status, reviewer="bob", reviewer_roles=["lead"])
        await handle.execute_update("decide", lead, result_type=DecisionReceipt)
        result = await handle.result()
    assert result.status == "completed" and result.disposition == "approved"
