"""Operations, tried as a careless operator would (issue 9, item 8): `docker stop` on a worker
mid-call, killing `tether dev`, and `tether run --wait | jq`."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from policies.models import TetherPolicy
from tests.policy_variants import gated
from tests.workflows.test_durability import worker_process, write_policy
from tests.workflows.test_engine import ledger
from tether.core.settings import Settings
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration

MODEL_CALLS = {"tether.checked_llm_step", "tether.llm_step"}


async def _model_call_started(client: Client, run_id: str, within_s: float = 60) -> None:
    """Until a model-call activity of the run is running on a worker."""
    handle = client.get_workflow_handle(run_id)
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        pending = (await handle.describe()).raw_description.pending_activities
        if any(
            a.activity_type.name in MODEL_CALLS
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for a in pending
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no model call of {run_id} ever started")


async def test_sigterm_drains_the_worker_the_call_in_flight_finishes_once_and_exit_is_0(
    client: Client, settings: Settings, policy: TetherPolicy, tmp_path: Path
) -> None:
    accepting = gated(policy, accept=0.0)
    proc = worker_process(
        settings, write_policy(accepting, tmp_path / "policy.yaml"), latency_ms=3000
    )
    run_id = f"drain-{uuid.uuid4().hex[:8]}"
    try:
        handle = await client.start_workflow(
            "support_triage",
            Ticket(subject="Cannot log in", body="The app crashes after I type my password."),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=TriageResult,
        )
        await _model_call_started(client, run_id)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        log = (settings.home / "worker.log").read_text()
        assert code == 0, f"the worker died instead of draining: {code}\n{log[-2000:]}"
        assert "draining" in log
        drained = [(r.step, r.activity_attempt, r.call) for r in ledger(settings, run_id)]
        assert ("classify", 1, "main") in drained, "the call in flight finished and was charged"

        async with running_worker(client, settings, policy=accepting):
            result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result.status == "completed"
    rows = ledger(settings, run_id)
    identities = [(r.step, r.activity_attempt, r.call) for r in rows]
    assert len(identities) == len(set(identities)), f"duplicated ledger rows: {identities}"
    assert [r.activity_attempt for r in rows if r.step == "classify" and r.call == "main"] == [1]
    failed = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert not failed & set(events), "no activity was lost, cut off or re-run"
