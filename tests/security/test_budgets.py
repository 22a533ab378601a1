"""Budgets are hard, tried as a careless (or hostile) tenant would: a checkpoint holds the step's
worst case, N concurrent steps of one tenant cannot together pass its budget, and an attempt
cut off mid-call is charged at its hold instead of vanishing from the ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select
from temporalio.testing import ActivityEnvironment

from activities.checkpoint import check_cost, step_estimate_usd
from activities.deps import ActivityDeps
from activities.llm_step import LlmStepActivities
from activities.llm_step.call_log import hold_for_attempt
from activities.providers.registry import ProviderRegistry
from policies.loader import load_policy
from policies.models import TetherPolicy
from policies.pricing import estimate_cost_usd
from tests.conftest import make_settings
from tests.policy_variants import with_budgets
from tests.store.conftest import postgres_url
from tether.contracts import CheckedStepInput, CheckpointInput, LlmStepInput, PromptTemplate
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from tether.store.engine import dispose_all, get_engine
from tether.store.ledger import ESTIMATED, BudgetReservation, LedgerEntry, record_call
from tether.store.spend import SpendScope, spend_by_scope

WORKFLOW, STEP = "budget_probe", "answer"
PROMPT = PromptTemplate(id="probe", version="1", system="Answer in JSON.", user="{text}")
OUTPUT = "tests.workflows.sample_workflows:Answer"
STEPS = 20
FITS = 5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else postgres_url()
    dispose_all()


def settings_for(tmp_path: Path, database_url: str, latency_ms: int = 0) -> Settings:
    settings = make_settings(
        tmp_path,
        "127.0.0.1:1",
        TETHER_DATABASE_URL=database_url,
        TETHER_SIM_LATENCY_MS=str(latency_ms),
    )
    configure_audit(settings)  # model calls and budget actions go to the audit log, as in a worker
    return settings


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def deps_for(
    settings: Settings, policy: TetherPolicy, http: httpx.AsyncClient, threads: int = STEPS
) -> ActivityDeps:
    # Every step gets a store thread of its own: the checkpoints really race.
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="probe-store")
    return ActivityDeps(settings, policy, ProviderRegistry(settings, http), store_executor=pool)


def checkpoint(run_id: str, tenant: str, key: str) -> CheckpointInput:
    return CheckpointInput(
        run_id=run_id,
        workflow=WORKFLOW,
        step=STEP,
        tenant=tenant,
        model="simulated/cheap",
        input_chars=400,
        max_output_tokens=512,
        reservation_key=key,
    )


def step_input(run_id: str, tenant: str, key: str) -> CheckedStepInput:
    return CheckedStepInput(
        checkpoint=checkpoint(run_id, tenant, key),
        step=LlmStepInput(
            run_id=run_id,
            workflow=WORKFLOW,
            step=STEP,
            tenant=tenant,
            prompt=PROMPT,
            variables={"text": "What is the capital of France?" * 12},
            output_model=OUTPUT,
            model="simulated/cheap",
            idempotency_key=f"{key}/c1",
            max_output_tokens=512,
        ),
    )


def ledger_rows(url: str, **where: str) -> list[LedgerEntry]:
    with Session(get_engine(url)) as session:
        query = select(LedgerEntry).order_by(col(LedgerEntry.id))
        for name, value in where.items():
            query = query.where(getattr(LedgerEntry, name) == value)
        return list(session.exec(query).all())


def test_a_checkpoint_holds_every_call_the_step_may_make(tmp_path: Path) -> None:
    """Main call, two repairs, two extra samples and a judge on the strong tier: all held."""
    policy = load_policy()
    policy = policy.model_copy(
        update={
            "confidence": policy.confidence.model_copy(
                update={"max_repairs": 2, "samples": 3, "judge": True}
            )
        }
    )
    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    deps = ActivityDeps(settings, policy, ProviderRegistry(settings, httpx.AsyncClient()))
    inp = checkpoint("run-worst", "acme", "run-worst/answer/1")
    one_call = estimate_cost_usd(policy.prices, "simulated/cheap", 400, 512)
    judge = estimate_cost_usd(policy.prices, "simulated/strong", 400, 200)
    with Session(get_engine(settings.resolved_database_url)) as session:
        result = check_cost(deps, session, inp)
        session.commit()
        hold = session.exec(select(BudgetReservation)).one()
    # 3 calls that grow with each repair, 2 samples of the repaired request, and the judge.
    assert hold.estimate_usd > 5 * one_call + judge
    assert hold.estimate_usd == pytest.approx(step_estimate_usd(deps, inp, "simulated/cheap"))
    assert result.check.estimate_usd == hold.estimate_usd and hold.model == "simulated/cheap"
    dispose_all()


async def test_twenty_concurrent_steps_of_one_tenant_cannot_pass_a_budget_that_fits_five(
    tmp_path: Path, database_url: str, http: httpx.AsyncClient
) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    # Model calls slow enough that every checkpoint runs while the first holds still stand (a
    # settled step frees what it held beyond what it spent, and a later step may then fit).
    settings = settings_for(tmp_path, database_url, latency_ms=4000)
    base = load_policy()
    probe = ActivityDeps(settings, base, ProviderRegistry(settings, http))
    estimate = step_estimate_usd(probe, checkpoint("x", tenant, "x"), "simulated/cheap")
    policy = with_budgets(
        base,
        per_run_usd=None,
        per_user_daily_usd=None,
        per_tenant_monthly_usd=estimate * (FITS + 0.5),
        on_exceed="stop",
    )
    deps = deps_for(settings, policy, http)
    activities = LlmStepActivities(deps)
    runs = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(STEPS)]

    results = await asyncio.gather(
        *(
            ActivityEnvironment().run(
                activities.checked_llm_step, step_input(run, tenant, f"{run}/{STEP}/1")
            )
            for run in runs
        )
    )

    started = [r for r in results if r.step is not None]
    refused = [r for r in results if r.checkpoint and r.checkpoint.reservation_key is None]
    assert len(started) == FITS, f"{len(started)} steps passed a budget that fits {FITS}"
    assert len(refused) == STEPS - FITS
    mains = {row.run_id for row in ledger_rows(database_url, tenant=tenant, call="main")}
    assert len(mains) == FITS, "only steps that passed the checkpoint reached the provider"
    with Session(get_engine(database_url)) as session:
        (spent, held), *_ = spend_by_scope(
            session, [SpendScope.tenant_month(tenant, datetime.now(UTC))]
        )
    assert held == pytest.approx(0.0, abs=1e-9) and 0 < spent <= estimate * (FITS + 0.5)


async def test_an_attempt_whose_worker_died_is_charged_its_hold_as_estimated(
    tmp_path: Path, database_url: str, http: httpx.AsyncClient
) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    run = f"crash-{uuid.uuid4().hex[:8]}"
    settings = settings_for(tmp_path, database_url)
    deps = deps_for(settings, load_policy(), http, threads=1)
    inp = step_input(run, tenant, f"{run}/{STEP}/1")
    engine = get_engine(database_url)

    # Attempt 1 holds its worst case, makes its main call, and dies mid-repair (no release).
    with Session(engine) as session:
        first = hold_for_attempt(deps, session, inp, "simulated/cheap", 1)
        session.commit()
    assert first.reservation_key is not None
    with Session(engine) as session:
        hold_usd = session.exec(select(BudgetReservation)).all()[-1].estimate_usd
        record_call(
            session,
            LedgerEntry(
                key=f"{inp.step.idempotency_key}/a1/main",
                run_id=run,
                workflow=WORKFLOW,
                step=STEP,
                tenant=tenant,
                call="main",
                activity_attempt=1,
                model="simulated/cheap",
                provider="simulated",
                cost_usd=0.0001,
                outcome="invalid_output",
            ),
        )
        session.commit()

    # Attempt 2 finds the dead attempt's hold: charged, not released to zero.
    with Session(engine) as session:
        second = hold_for_attempt(deps, session, inp, "simulated/cheap", 2)
        session.commit()
    assert second.reservation_key is not None and second.reservation_key != first.reservation_key
    estimated = ledger_rows(database_url, run_id=run, outcome=ESTIMATED)
    assert len(estimated) == 1, "the cut-off attempt is on the ledger"
    assert estimated[0].cost_usd == pytest.approx(hold_usd - 0.0001)
    assert estimated[0].model == "simulated/cheap" and estimated[0].step == STEP
    with Session(engine) as session:
        (spent, held), *_ = spend_by_scope(session, [SpendScope.run(run)])
    assert spent == pytest.approx(hold_usd), "attempt 1 costs its whole hold"
    assert held == pytest.approx(second.check.estimate_usd), "only attempt 2 is still held"


async def test_an_attempt_cancelled_mid_call_is_charged_its_hold_as_estimated(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    run = f"cancel-{uuid.uuid4().hex[:8]}"
    settings = settings_for(tmp_path, url, latency_ms=5000)
    deps = deps_for(settings, load_policy(), http, threads=1)
    env = ActivityEnvironment()
    task = asyncio.create_task(
        env.run(LlmStepActivities(deps).checked_llm_step, step_input(run, "acme", f"{run}/a/1"))
    )
    for _ in range(200):  # until the hold is written: the model call is under way
        await asyncio.sleep(0.05)
        with Session(get_engine(url)) as session:
            if session.exec(select(BudgetReservation)).first():
                break
    await asyncio.sleep(0.3)
    env.cancel()
    with pytest.raises(BaseException):  # noqa: B017 (the cancellation, in whatever wrapper)
        await task
    estimated = ledger_rows(url, run_id=run, outcome=ESTIMATED)
    assert len(estimated) == 1 and estimated[0].cost_usd > 0
    with Session(get_engine(url)) as session:
        (spent, held), *_ = spend_by_scope(session, [SpendScope.run(run)])
    assert held == 0 and spent == pytest.approx(estimated[0].cost_usd)
