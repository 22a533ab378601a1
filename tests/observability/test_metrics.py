"""``/metrics`` after scripted runs on the real Temporal server: counts and sums, not presence;
across two worker processes sharing one multiprocess folder too."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from sqlmodel import Session
from temporalio.client import Client

from bench.worker_process import WorkerProcess
from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.observability.scrape import Samples, scrape, value
from tests.observability.tagged_workflow import FEATURE, TaggedStep
from tests.policy_variants import gated
from tests.workflows.sample_workflows import OneStepResult, Question
from tests.workflows.test_engine import decision_for, wait_for_pending
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.ledger import entries_for_run
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration

WORKFLOW = "test_tagged_step"


def metrics_client(settings: Settings, policy: TetherPolicy, client: Client) -> httpx.AsyncClient:
    app = create_app(settings, client=client, policy=policy)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def ledger_rows(settings: Settings, run_id: str) -> list:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return entries_for_run(session, run_id)


async def test_metrics_count_steps_tokens_cost_runs_and_reviews(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    http = metrics_client(settings, policy, client)
    before = await scrape(http)
    run_ids = [f"metrics-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    async with running_worker(
        client, settings, policy=gated(policy, accept=0.0), extra_workflows=[TaggedStep]
    ):
        results = [
            await client.execute_workflow(
                WORKFLOW,
                Question(text=f"question {i}", tenant="acme"),
                id=run_id,
                task_queue=settings.task_queue,
                result_type=OneStepResult,
            )
            for i, run_id in enumerate(run_ids)
        ]
    after = await scrape(http)
    assert [r.status for r in results] == ["completed"] * 3
    rows = [row for run_id in run_ids for row in ledger_rows(settings, run_id)]

    step = {"workflow": WORKFLOW, "step": "answer"}
    assert delta(after, before, "tether_steps_total", status="valid", **step) == 3
    assert delta(after, before, "tether_runs_total", workflow=WORKFLOW, status="completed") == 3
    assert delta(after, before, "tether_run_seconds_count", workflow=WORKFLOW) == 3
    for phase in ("model", "queue", "orchestration", "total"):
        assert delta(after, before, "tether_step_phase_seconds_count", phase=phase, **step) == 3
    tokens_in = sum(row.input_tokens for row in rows)
    tokens_out = sum(row.output_tokens for row in rows)
    assert tokens_in > 0 and tokens_out > 0
    assert delta(after, before, "tether_tokens_total", direction="in", **step) == tokens_in
    assert delta(after, before, "tether_tokens_total", direction="out", **step) == tokens_out
    cost = delta(after, before, "tether_cost_usd_total", tenant="acme", feature=FEATURE, **step)
    assert cost == pytest.approx(sum(r.cost_usd for r in results), rel=1e-9)
    assert cost == pytest.approx(sum(row.cost_usd for row in rows), rel=1e-9)
    model_s = delta(after, before, "tether_step_phase_seconds_sum", phase="model", **step)
    total_s = delta(after, before, "tether_step_phase_seconds_sum", phase="total", **step)
    assert 0 <= model_s <= total_s
    assert value(after, "tether_review_queue_depth") == 0

    # One run a reviewer must decide: the queue shows it, then the decision and its wait.
    run_id = f"metrics-review-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=1.0), extra_workflows=[TaggedStep]
    ):
        handle = await client.start_workflow(
            WORKFLOW, Question(text="hold"), id=run_id, task_queue=settings.task_queue
        )
        status = await wait_for_pending(client, run_id)
        waiting = await scrape(http)
        assert value(waiting, "tether_review_queue_depth") == 1
        await asyncio.sleep(0.3)
        await handle.execute_update("decide", decision_for(status, channel="web"))
        await handle.result()
    decided = await scrape(http)
    assert value(decided, "tether_review_queue_depth") == 0
    assert delta(decided, after, "tether_reviews_opened_total", workflow=WORKFLOW) == 1
    assert (
        delta(
            decided,
            after,
            "tether_review_decisions_total",
            workflow=WORKFLOW,
            decision="approve",
            channel="web",
        )
        == 1
    )
    waited = delta(decided, after, "tether_time_to_decision_seconds_sum", workflow=WORKFLOW)
    assert delta(decided, after, "tether_time_to_decision_seconds_count", workflow=WORKFLOW) == 1
    assert 0.3 <= waited < 30
    human = {"phase": "human", **step}
    assert delta(decided, after, "tether_step_phase_seconds_sum", **human) == waited
    await http.aclose()


@pytest.mark.timeout(400)  # two worker processes start on a shared, busy machine
async def test_two_worker_processes_add_up_in_one_metrics_page(
    tmp_path: Path, settings: Settings, client: Client, policy: TetherPolicy
) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    policy_file = tmp_path / "policy.yaml"
    accepting = gated(policy, accept=0.0)
    policy_file.write_text(yaml.safe_dump(accepting.model_dump(mode="json", exclude_none=True)))
    env = {
        "TETHER_HOME": str(settings.home),
        "TETHER_TEMPORAL_ADDRESS": settings.temporal_address,
        "TETHER_TASK_QUEUE": settings.task_queue,
        "TETHER_POLICY_FILE": str(policy_file),
        "TETHER_SIM_LATENCY_MS": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    workers = [
        WorkerProcess(env, tmp_path / f"worker-{i}.log", startup_timeout=240) for i in range(2)
    ]
    runs = 6
    get_engine(settings.resolved_database_url)  # the store is migrated once, before they start
    try:
        await asyncio.gather(*(asyncio.to_thread(worker.start) for worker in workers))
        run_ids = [f"two-workers-{uuid.uuid4().hex[:8]}" for _ in range(runs)]
        results = await asyncio.gather(
            *(
                client.execute_workflow(
                    "support_triage",
                    Ticket(subject=f"Ticket {i}", body="My invoice is wrong, please fix it."),
                    id=run_id,
                    task_queue=settings.task_queue,
                    result_type=TriageResult,
                )
                for i, run_id in enumerate(run_ids)
            )
        )
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
    assert [r.status for r in results] == ["completed"] * runs
    cost = sum(r.cost_usd for r in results)

    per_process = {path.name.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}
    assert len(per_process) == 2, "each worker process writes its own files"
    from tests.observability.scrape import parse
    from tether.core.metrics import render_metrics

    samples = parse(render_metrics(multiproc_dir=str(multiproc)).decode())
    triage = {"workflow": "support_triage"}
    assert value(samples, "tether_runs_total", status="completed", **triage) == runs
    # Three steps a run (classify, extract, draft_reply); on a busy machine an attempt may time
    # out and run again: each execution is counted, as the ledger has its main call.
    executions = sum(
        1 for run_id in run_ids for row in ledger_rows(settings, run_id) if row.call == "main"
    )
    assert executions >= 3 * runs
    assert value(samples, "tether_steps_total", **triage) == executions
    assert value(samples, "tether_cost_usd_total", **triage) == pytest.approx(cost, rel=1e-9)
    # The SDK's own metrics, moved from each worker's buffer into the same files.
    assert (
        value(samples, "temporal_workflow_completed_total", workflow_type="support_triage") == runs
    )


async def test_metrics_are_refused_outside_dev_without_a_token(
    tmp_path: Path, policy: TetherPolicy
) -> None:
    from argon2 import PasswordHasher

    from policies.models import Reviewer

    erin = Reviewer(name="erin", password_hash=PasswordHasher().hash("x"), roles=["reviewer"])
    settings = Settings.from_env(
        {
            "TETHER_ENV": "production",
            "TETHER_HOME": str(tmp_path),
            "TETHER_SESSION_SECRET": "s" * 64,
            "TETHER_AUDIT_KEY": "a" * 64,
            "TETHER_PII_KEY": "b" * 64,
        }
    )
    app = create_app(settings, policy=policy.model_copy(update={"reviewers": [erin]}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get("/metrics")
    assert response.status_code == 403
    assert "TETHER_METRICS_TOKEN" in response.text
    assert "tether_" not in response.text


async def test_metrics_ask_for_the_bearer_token_when_one_is_set(
    tmp_path: Path, policy: TetherPolicy
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, "127.0.0.1:1", TETHER_METRICS_TOKEN="s3cret-token-1234")
    app = create_app(settings, policy=policy)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert (await http.get("/metrics", headers=wrong)).status_code == 401
        right = {"authorization": "Bearer s3cret-token-1234"}
        response = await http.get("/metrics", headers=right)
    assert response.status_code == 200
    assert "tether_review_queue_depth 0.0" in response.text
