"""A provider call that failed after its request was sent may still be billed: the attempt is
charged its hold, marked estimated. Calls refused before sending and 4xx answers are not."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.deps import ActivityDeps
from activities.llm_step import LlmStepActivities
from activities.providers.http import classify_http_error, may_have_been_billed
from policies.loader import load_policy
from policies.models import TetherPolicy
from tests.fakes.provider_server import FakeProviderServer
from tests.security.test_budgets import deps_for, ledger_rows, settings_for, step_input
from tether.core.settings import Settings
from tether.store.engine import dispose_all, get_engine
from tether.store.ledger import ESTIMATED
from tether.store.spend import SpendScope, spend_by_scope

MODEL = "openai/gpt-4o-mini"


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'store.db'}"
    dispose_all()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5, connect=0.5)) as client:
        yield client


@pytest.fixture
def provider() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def openai_settings(tmp_path: Path, url: str, base_url: str, key: str) -> Settings:
    settings = settings_for(tmp_path, url)
    return settings.model_copy(
        update={"openai_base_url": base_url, "openai_api_key": SecretStr(key)}
    )


def sampled(policy: TetherPolicy, samples: int) -> TetherPolicy:
    confidence = policy.confidence.model_copy(update={"samples": samples, "judge": False})
    return policy.model_copy(update={"confidence": confidence})


async def run_attempt(deps: ActivityDeps, run: str, attempt: int) -> BaseException | None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    inp = step_input(run, "acme", f"{run}/answer/1")
    inp = inp.model_copy(
        update={
            "checkpoint": inp.checkpoint.model_copy(update={"model": MODEL}),
            "step": inp.step.model_copy(update={"model": MODEL, "fallback_index": 0}),
        }
    )
    try:
        await env.run(LlmStepActivities(deps).checked_llm_step, inp)
    except BaseException as exc:  # the activity's failure, whatever its wrapper
        return exc
    return None


def run_totals(url: str, run: str) -> tuple[float, float]:
    with Session(get_engine(url)) as session:
        (spent, held), *_ = spend_by_scope(session, [SpendScope.run(run)])
    return spent, held


def test_failures_after_sending_may_be_billed_and_before_sending_not() -> None:
    request = httpx.Request("POST", "https://api.example/v1/chat/completions")

    def classified(failure: Exception | httpx.Response) -> bool:
        error = classify_http_error("openai", failure)
        if isinstance(failure, Exception):
            error.__cause__ = failure  # as ProviderEndpoint.post raises it
        return may_have_been_billed(error)

    assert classified(httpx.ReadTimeout("slow", request=request))
    assert classified(httpx.RemoteProtocolError("dropped", request=request))
    assert classified(httpx.ReadError("reset", request=request))
    assert not classified(httpx.Response(500, request=request))
    assert not classified(httpx.Response(529, request=request))
    assert not classified(httpx.ConnectTimeout("no answer", request=request))
    assert not classified(httpx.ConnectError("refused", request=request))
    assert not classified(httpx.Response(400, request=request))
    assert not classified(httpx.Response(429, request=request))


async def test_each_timed_out_attempt_is_charged_its_hold_as_estimated(
    tmp_path: Path, url: str, http: httpx.AsyncClient, provider: FakeProviderServer
) -> None:
    run = f"timeout-{uuid.uuid4().hex[:8]}"
    settings = openai_settings(
        tmp_path, url, provider.openai_base_url, provider.openai_api_key or ""
    )
    deps = deps_for(settings, load_policy(), http, threads=1)
    provider.script(delay_s=5.0, times=2)  # both attempts hang past the 0.5 s read timeout
    for attempt in (1, 2):
        failure = await run_attempt(deps, run, attempt)
        assert failure is not None and "timed out" in str(failure.__cause__ or failure)
    estimated = ledger_rows(url, run_id=run, outcome=ESTIMATED)
    assert len(estimated) == 2, "an estimated row for each timed-out attempt"
    assert all(row.cost_usd > 0 and row.model == MODEL for row in estimated)
    spent, held = run_totals(url, run)
    assert held == 0 and spent == pytest.approx(sum(row.cost_usd for row in estimated))


async def test_an_answered_error_or_a_refused_connection_is_not_charged(
    tmp_path: Path, url: str, http: httpx.AsyncClient, provider: FakeProviderServer
) -> None:
    key = provider.openai_api_key or ""
    deps = deps_for(
        openai_settings(tmp_path, url, provider.openai_base_url, key), load_policy(), http
    )
    provider.script(fail_with=503)
    await run_attempt(deps, run5 := f"5xx-{uuid.uuid4().hex[:8]}", 1)
    assert ledger_rows(url, run_id=run5, outcome=ESTIMATED) == []
    assert run_totals(url, run5) == (0, 0)

    provider.script(fail_with=400)
    await run_attempt(deps, run4 := f"4xx-{uuid.uuid4().hex[:8]}", 1)
    assert ledger_rows(url, run_id=run4, outcome=ESTIMATED) == []
    assert run_totals(url, run4) == (0, 0)

    refused = deps_for(
        openai_settings(tmp_path, url, "http://127.0.0.1:1/v1", key), load_policy(), http
    )
    await run_attempt(refused, runc := f"refused-{uuid.uuid4().hex[:8]}", 1)
    assert ledger_rows(url, run_id=runc, outcome=ESTIMATED) == []
    assert run_totals(url, runc) == (0, 0)


async def test_a_sample_cancelled_in_flight_by_a_failing_sibling_is_charged(
    tmp_path: Path, url: str, http: httpx.AsyncClient, provider: FakeProviderServer
) -> None:
    run = f"sibling-{uuid.uuid4().hex[:8]}"
    key = provider.openai_api_key or ""
    settings = openai_settings(tmp_path, url, provider.openai_base_url, key)
    deps = deps_for(settings, sampled(load_policy(), 3), http)
    provider.script(answer={"answer": "Paris", "sure": True})  # the main call answers
    # One sample is refused at once (400: never billed); the other is in flight, then cancelled.
    provider.script(fail_with=400)
    provider.script(delay_s=0.3, answer={"answer": "Paris", "sure": True})
    failure = await run_attempt(deps, run, 1)
    assert failure is not None
    await asyncio.sleep(0)
    estimated = ledger_rows(url, run_id=run, outcome=ESTIMATED)
    assert len(estimated) == 1, "the cancelled sample may have been billed"
    spent, held = run_totals(url, run)
    assert held == 0 and spent > 0
