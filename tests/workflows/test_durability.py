"""Crashes lose nothing: a worker killed mid-step, a server restarted while a run is paused."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select
from temporalio.client import Client

from policies.models import TetherPolicy
from tests.conftest import make_settings
from tests.policy_variants import gated
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import decision_for, ledger, wait_for_pending
from tether.client import connect
from tether.contracts import DecisionReceipt, RunStatus
from tether.core.settings import Settings
from tether.store.engine import dispose_all, get_engine
from tether.store.ledger import BudgetReservation, run_spend
from tether.temporal_server import DevServer
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration


def write_policy(policy: TetherPolicy, path: Path) -> Path:
    path.write_text(yaml.safe_dump(policy.model_dump(mode="json")))
    return path


def worker_process(
    settings: Settings, policy_file: Path, latency_ms: int
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "TETHER_HOME": str(settings.home),
        "TETHER_TEMPORAL_ADDRESS": settings.temporal_address,
        "TETHER_TASK_QUEUE": settings.task_queue,
        "TETHER_POLICY_FILE": str(policy_file),
        "TETHER_SIM_LATENCY_MS": str(latency_ms),
    }
    log = open(settings.home / "worker.log", "wb")  # noqa: SIM115 (lives as long as the process)
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def test_worker_killed_mid_step_a_new_worker_finishes_without_duplicate_ledger_rows(
    client: Client, settings: Settings, policy: TetherPolicy, tmp_path: Path
) -> None:
    accepting = gated(policy, accept=0.0)
    proc = worker_process(
        settings, write_policy(accepting, tmp_path / "policy.yaml"), latency_ms=3000
    )
    run_id = f"crash-{uuid.uuid4().hex[:8]}"
    try:
        handle = await client.start_workflow(
            "support_triage",
            Ticket(subject="Cannot log in", body="The app crashes after I type my password."),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=TriageResult,
        )
        # Wait until the first step's checkpoint has reserved its cost: the model call is next.
        for _ in range(1200):  # a loaded machine takes a while to start a worker process
            with Session(get_engine(settings.resolved_database_url)) as session:
                if session.exec(
                    select(BudgetReservation).where(BudgetReservation.run_id == run_id)
                ).first():
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(
                f"the worker never started the run: {(settings.home / 'worker.log').read_text()[-2000:]}"
            )
        await asyncio.sleep(1.0)  # inside the 3 s simulated model call
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert ledger(settings, run_id) == [], (
            "the killed call never finished, so nothing was charged yet"
        )

        async with running_worker(client, settings, policy=accepting):
            result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result.status == "completed"
    rows = ledger(settings, run_id)
    identities = [(r.step, r.activity_attempt, r.call) for r in rows]
    assert len(identities) == len(set(identities)), f"duplicated ledger rows: {identities}"
    classify_main = [r.activity_attempt for r in rows if r.step == "classify" and r.call == "main"]
    assert classify_main == [2], (
        "attempt 1 died with the worker; attempt 2 made the only call that reported its usage"
    )
    # Attempt 1's call may have reached the provider: its hold is charged, marked estimated.
    assert [(r.step, r.outcome) for r in rows if r.call == "estimated"] == [
        ("classify", "estimated")
    ]
    assert [s.name for s in result.steps] == ["classify", "extract", "draft_reply"]
    assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))
    with Session(get_engine(settings.resolved_database_url)) as session:
        # The dead attempt's hold is charged by the next, not left counting until month end.
        assert run_spend(session, run_id) == (pytest.approx(result.cost_usd), 0.0)


async def test_a_paused_run_survives_a_server_restart_on_the_same_database(
    tmp_path: Path, policy: TetherPolicy
) -> None:
    db = tmp_path / "temporal.db"
    reviewing = gated(policy, accept=1.0)
    run_id = f"restart-{uuid.uuid4().hex[:8]}"
    async with DevServer(db) as server:
        settings = make_settings(tmp_path, server.address)
        client = await connect(settings)
        async with running_worker(
            client, settings, policy=reviewing, extra_workflows=TEST_WORKFLOWS
        ):
            await client.start_workflow(
                "test_one_step",
                Question(text="Should we ship on Friday?"),
                id=run_id,
                task_queue=settings.task_queue,
                result_type=OneStepResult,
            )
            before = await wait_for_pending(client, run_id)
        port = int(server.address.rpartition(":")[2])
    dispose_all()

    async with DevServer(db, port=port) as server:
        client = await connect(settings)
        handle = client.get_workflow_handle(run_id, result_type=OneStepResult)
        async with running_worker(
            client, settings, policy=reviewing, extra_workflows=TEST_WORKFLOWS
        ):
            after = await handle.query("status", result_type=RunStatus)
            assert after.pending == before.pending, "the same review is still waiting"
            await handle.execute_update("decide", decision_for(after), result_type=DecisionReceipt)
            result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.status == "completed" and result.disposition == "approved"
