"""The rate-limit checkpoint in the real activity, on SQLite and PostgreSQL: concurrent steps of
one user cannot pass its limit together, and a retried attempt counts once for the user but
again for the provider, whose calls it really repeats."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.llm_step import LlmStepActivities
from policies.limits import LimitsPolicy, LimitWindow, ProviderCap
from policies.loader import load_policy
from policies.models import TetherPolicy
from tests.security.test_budgets import STEP, deps_for, ledger_rows, settings_for, step_input
from tests.store.conftest import postgres_url
from tether.contracts import CheckedStepInput
from tether.store.engine import dispose_all, get_engine
from tether.store.limits import LimitCounter


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else postgres_url()
    dispose_all()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def limited(**limits: object) -> TetherPolicy:
    policy = load_policy()
    # The cache off: racing steps ask the same question, and a hit would not count a call.
    cache = policy.cache.model_copy(update={"enabled": False})
    return policy.model_copy(update={"limits": LimitsPolicy.model_validate(limits), "cache": cache})


def user_step(run: str, tenant: str, user: str) -> CheckedStepInput:
    inp = step_input(run, tenant, f"{run}/{STEP}/1")
    return inp.model_copy(
        update={
            "checkpoint": inp.checkpoint.model_copy(update={"end_user": user}),
            "step": inp.step.model_copy(update={"end_user": user}),
        }
    )


def counted(url: str, scope: str, tenant: str | None = None) -> int:
    """Requests counted in every window of ``scope`` (of ``tenant``'s, for a user)."""
    with Session(get_engine(url)) as session:
        rows = session.exec(select(LimitCounter)).all()
    keys = [(json.loads(row.key), row.requests) for row in rows]
    return sum(n for key, n in keys if key[0] == scope and (tenant is None or key[1] == tenant))


async def test_concurrent_steps_of_one_user_cannot_pass_its_limit_together(
    tmp_path: Path, database_url: str, http: httpx.AsyncClient
) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    settings = settings_for(tmp_path, database_url)
    policy = limited(per_user=[{"seconds": 3600, "requests": 4}], on_exceed="refuse")
    activities = LlmStepActivities(deps_for(settings, policy, http, threads=12))
    runs = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(12)]

    results = await asyncio.gather(
        *(
            ActivityEnvironment().run(activities.checked_llm_step, user_step(run, tenant, "u1"))
            for run in runs
        )
    )

    assert len([r for r in results if r.step is not None]) == 4
    held = [r.limited for r in results if r.limited is not None]
    assert len(held) == 8 and {h.action for h in held} == {"refuse"}
    assert {h.limit for h in held} == {"user u1: 4 requests per hour"}
    assert len(ledger_rows(database_url, tenant=tenant, call="main")) == 4


async def test_a_retried_attempt_counts_once_for_the_user_and_again_for_the_provider(
    tmp_path: Path, database_url: str, http: httpx.AsyncClient
) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    settings = settings_for(tmp_path, database_url)
    policy = limited(
        per_user=[LimitWindow(seconds=3600, requests=1)],
        providers={"simulated": ProviderCap(requests_per_minute=1000)},
    )
    activities = LlmStepActivities(deps_for(settings, policy, http, threads=2))
    inp = user_step(f"retry-{uuid.uuid4().hex[:8]}", tenant, "u2")
    first, second = ActivityEnvironment(), ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2)

    provider_before = counted(database_url, "provider")
    one = await first.run(activities.checked_llm_step, inp)
    two = await second.run(activities.checked_llm_step, inp)  # the user's window is full

    assert one.step is not None and two.step is not None and two.limited is None
    assert counted(database_url, "user", tenant) == 1
    # The provider served both attempts: each one's calls (main, repairs, the judge when it
    # is on the same provider) are counted.
    calls = sum(1 for r in (one.step, two.step) for a in r.attempts if a.model.startswith("sim"))
    assert counted(database_url, "provider") - provider_before == calls
