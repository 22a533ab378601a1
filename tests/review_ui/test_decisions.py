"""Decision delivery on the real Temporal dev server: the outbox keeps a decision no worker took."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from policies.models import TetherPolicy
from review_ui.decisions import decision_update_id, redeliver_pending, submit_decision
from tests.policy_variants import gated
from tether.contracts import ReviewDecision, RunStatus
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.reviews import DecisionIntent
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration


async def paused_run(client: Client, settings: Settings) -> tuple[str, RunStatus]:
    run_id = f"triage-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        "support_triage",
        Ticket(subject="Charged twice", body="I was billed twice for order 1234."),
        id=run_id,
        task_queue=settings.task_queue,
    )
    handle = client.get_workflow_handle(run_id)
    for _ in range(200):
        status = await handle.query("status", result_type=RunStatus)
        if status.pending is not None:
            return run_id, status
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} never paused")


def approval(status: RunStatus, reviewer: str = "bob") -> ReviewDecision:
    assert status.pending is not None
    return ReviewDecision(
        review_id=status.pending.review_id,
        kind="approve",
        reviewer=reviewer,
        reviewer_roles=["lead"],
        output_digest=status.pending.output_digest,
        channel="web",
    )


def intents(settings: Settings) -> list[DecisionIntent]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return list(session.exec(select(DecisionIntent)).all())


async def test_decision_is_kept_while_no_worker_runs_and_delivered_to_the_next_worker(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    paused = gated(policy, accept=1.0)
    async with running_worker(client, settings, policy=paused):
        run_id, status = await paused_run(client, settings)
    # The worker is gone: the decision cannot be taken now, but it must not be lost.
    outcome = await submit_decision(
        client,
        approval(status),
        run_id=run_id,
        update_id=decision_update_id(approval(status).review_id, "nonce-1"),
        database_url=settings.resolved_database_url,
        attempt_wait=timedelta(seconds=2),
    )
    assert outcome.state == "queued" and not outcome.accepted
    assert "saved" in outcome.message
    [kept] = intents(settings)
    assert kept.status == "pending" and kept.attempts == 1

    async with running_worker(client, settings, policy=gated(policy, accept=0.0)):
        for _ in range(60):
            with Session(get_engine(settings.resolved_database_url)) as session:
                row = session.get(DecisionIntent, kept.id)
                assert row is not None
                if row.status == "pending" and row.next_attempt_at is not None:
                    row.next_attempt_at = row.created_at  # no need to wait out the backoff
                    session.add(row)
                    session.commit()
            await redeliver_pending(
                client,
                database_url=settings.resolved_database_url,
                attempt_wait=timedelta(seconds=3),
            )
            if intents(settings)[0].status != "pending":
                break
        [delivered] = intents(settings)
        assert delivered.status == "delivered", delivered.last_error
        assert delivered.receipt is not None and delivered.receipt["reviewer"] == "bob"
        result = await client.get_workflow_handle(run_id, result_type=TriageResult).result()
    assert result.status == "completed"
    assert result.steps[0].decision == "approve"


async def test_a_decision_for_an_unknown_or_finished_run_is_refused_with_a_clear_message(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    ghost = ReviewDecision(
        review_id="ghost-run:classify:1",
        kind="approve",
        reviewer="bob",
        reviewer_roles=["lead"],
        output_digest="sha256:" + "0" * 64,
    )
    unknown = await submit_decision(
        client, ghost, run_id="ghost-run", database_url=settings.resolved_database_url
    )
    assert (unknown.accepted, unknown.state) == (False, "refused")
    assert unknown.message == "no run ghost-run is known to Temporal"

    async with running_worker(client, settings, policy=gated(policy, accept=1.0)):
        run_id, status = await paused_run(client, settings)
        await client.get_workflow_handle(run_id).terminate("test: the run ends early")
    late = await submit_decision(
        client, approval(status), run_id=run_id, database_url=settings.resolved_database_url
    )
    assert (late.accepted, late.state) == (False, "refused")
    assert late.message == f"run {run_id} has already finished; the decision was not needed"
    assert sorted(i.status for i in intents(settings)) == ["refused", "refused"]
