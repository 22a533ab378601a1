"""Attacks on the review lifecycle (issue 9, item 5), each tried the way a caller would.

- A decision kind the item does not offer (an edit of a provider failure, which has no output
  and no schema) is refused by the workflow's validator and by the API (409 with the reason).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.fakes.provider_server import FakeProviderServer
from tests.policy_variants import gated, routed
from tests.review_ui.conftest import BOB, UiServer
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import GPT, decision_for, openai_settings, wait_for_pending
from tether.contracts import DecisionReceipt, RunStatus
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
