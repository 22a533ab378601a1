"""Cost checkpoints on the real dev server: each over-budget action, each budget scope."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from policies.models import TetherPolicy
from policies.pricing import cost_usd
from policies.values import Usage
from tests.policy_variants import gated, judging_always, with_budgets
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import decision_for, ledger, wait_for_pending
from tether.contracts import DecisionReceipt, ReviewDecision
from tether.core.settings import Settings
from tether.worker import running_worker

pytestmark = pytest.mark.integration

# A step's worst case (main call, two repairs, the judge on simulated/strong): ~0.0064 USD on
# simulated/cheap, ~0.030 USD on simulated/strong.
BELOW_ANY_STEP = 0.0001
CHEAP_BUT_NOT_STRONG = 0.01


async def run_one(
    client: Client,
    settings: Settings,
    policy: TetherPolicy,
    workflow: str = "test_one_step",
    question: Question | None = None,
) -> tuple[str, OneStepResult]:
    run_id = f"budget-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client, settings, policy=gated(policy, accept=0.0), extra_workflows=TEST_WORKFLOWS
    ):
        result = await client.execute_workflow(
            workflow,
            question or Question(text="What is the capital of France?", user="u1"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
    return run_id, result


async def test_stop_ends_the_run_cleanly_before_any_model_call(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id, result = await run_one(
        client, settings, with_budgets(policy, per_run_usd=BELOW_ANY_STEP, on_exceed="stop")
    )
    assert result.status == "stopped_over_budget"
    assert result.halted_step == "answer"
    assert result.halted_reason is not None and "run budget" in result.halted_reason
    assert ledger(settings, run_id) == []


async def test_downgrade_runs_the_step_on_the_cheaper_model(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id, result = await run_one(
        client,
        settings,
        with_budgets(policy, per_run_usd=CHEAP_BUT_NOT_STRONG, on_exceed="downgrade"),
        workflow="test_one_strong_step",
    )
    assert result.status == "completed"
    assert result.steps[0].model == "simulated/cheap"
    assert {r.model for r in ledger(settings, run_id) if r.call == "main"} == {"simulated/cheap"}


@pytest.mark.parametrize("verdict", ["approve", "reject"])
async def test_approve_spend_pauses_for_a_human(
    client: Client, settings: Settings, policy: TetherPolicy, verdict: str
) -> None:
    run_id = f"spend-{uuid.uuid4().hex[:8]}"
    budget_policy = gated(
        with_budgets(judging_always(policy), per_run_usd=BELOW_ANY_STEP, on_exceed="approve_spend"),
        accept=0.0,
    )
    async with running_worker(
        client, settings, policy=budget_policy, extra_workflows=TEST_WORKFLOWS
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Translate 'hello' to French"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        assert status.pending is not None and status.pending.reason == "over_budget"
        assert ledger(settings, run_id) == [], "nothing is spent while the request waits"
        decision: ReviewDecision = decision_for(
            status, kind=verdict, reason="not worth it" if verdict == "reject" else None
        )
        await handle.execute_update("decide", decision, result_type=DecisionReceipt)
        result = await handle.result()
    if verdict == "approve":
        assert result.status == "completed" and result.answer
        rows = ledger(settings, run_id)
        # Once approved, the step runs once: its answer and the default policy's judge, each
        # charged at its model's price for the tokens it used, and nothing else.
        assert [(r.step, r.call, r.model, r.activity_attempt, r.outcome) for r in rows] == [
            ("answer", "main", "simulated/cheap", 1, "ok"),
            ("answer", "judge", "simulated/strong", 1, "ok"),
        ]
        for row in rows:
            usage = Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens)
            assert row.input_tokens > 0 and row.output_tokens > 0
            assert row.cost_usd == pytest.approx(cost_usd(policy.prices, row.model, usage))
        assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))
        assert result.steps[0].cost_usd == pytest.approx(result.cost_usd)
    else:
        assert result.status == "stopped_over_budget"
        assert result.halted_reason is not None and "not worth it" in result.halted_reason
        assert ledger(settings, run_id) == []


async def test_daily_user_budget_counts_earlier_runs_of_the_same_user(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    limited = with_budgets(policy, per_run_usd=None, per_user_daily_usd=0.0072, on_exceed="stop")
    first_id, first = await run_one(client, settings, limited)
    assert first.status == "completed"
    spent = sum(r.cost_usd for r in ledger(settings, first_id))
    assert spent > 0
    runs = [first]
    for _ in range(6):  # spend accumulates until the next step's estimate no longer fits
        _, result = await run_one(client, settings, limited)
        runs.append(result)
        if result.status != "completed":
            break
    assert runs[-1].status == "stopped_over_budget"
    assert "daily user budget" in (runs[-1].halted_reason or "")
    _, other_user = await run_one(
        client, settings, limited, question=Question(text="hi", user="u2")
    )
    assert other_user.status == "completed", "another user's budget is separate"


async def test_monthly_tenant_budget_stops_the_tenant(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    limited = with_budgets(
        policy,
        per_run_usd=None,
        per_user_daily_usd=None,
        per_tenant_monthly_usd=BELOW_ANY_STEP,
        on_exceed="stop",
    )
    _, result = await run_one(
        client, settings, limited, question=Question(text="hi", tenant="small-co")
    )
    assert result.status == "stopped_over_budget"
    assert "monthly tenant budget" in (result.halted_reason or "")
