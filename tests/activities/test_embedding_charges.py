"""Billed embedding calls are charged to the step that made them, whatever becomes of the call:
answered, failed after it was sent, or cancelled in flight by the learned rule's time bound.
Real store (SQLite), the real ledger, the fake OpenAI embeddings endpoint."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from activities.deps import ActivityDeps
from activities.llm_step.call_log import CallLog
from activities.providers.registry import ProviderRegistry
from activities.step_cache import StepCache
from policies.loader import load_policy
from tests.activities.test_learned_route import request_for, step_input
from tests.fakes.provider_server import FakeProviderServer
from tether.store.audit_key import configure_audit
from tether.store.engine import get_engine, upgrade_database
from tether.store.ledger import entries_for_run

TEXT = "How do I reset my password on the mobile app?"
PRICE = 0.02 / 1e6  # openai/text-embedding-3-small, per input token (the default policy)


def provider_cache(
    tmp_path: Path, server: FakeProviderServer, http: httpx.AsyncClient
) -> StepCache:
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        "localhost:1",
        OPENAI_API_KEY=server.openai_api_key,
        OPENAI_BASE_URL=server.openai_base_url,
    )
    upgrade_database(settings.resolved_database_url)
    configure_audit(settings)
    policy = load_policy()
    policy = policy.model_copy(
        update={"cache": policy.cache.model_copy(update={"embedder": "provider"})}
    )
    return StepCache(ActivityDeps(settings, policy, ProviderRegistry(settings, http)))


def ledger(cache: StepCache, run_id: str) -> list:
    with Session(get_engine(cache.deps.settings.resolved_database_url)) as session:
        return entries_for_run(session, run_id)


async def test_an_answered_embedding_is_charged_its_billed_tokens_in_cost_not_in_tokens(
    tmp_path: Path, provider_server: FakeProviderServer
) -> None:
    async with httpx.AsyncClient() as http:
        cache = provider_cache(tmp_path, provider_server, http)
        log = CallLog(cache.deps, step_input(TEXT, "run-ok"), 1)
        await cache.learned_rule("acme", "support_triage", "answer", TEXT, log)
        await cache.learned_rule("acme", "support_triage", "answer", TEXT, log)  # remembered

    (row,) = ledger(cache, "run-ok")
    tokens = math.ceil(len(TEXT) / 4)  # what the fake's usage reports
    assert (row.call, row.outcome, row.input_tokens) == ("embed-1", "ok", tokens)
    assert row.cost_usd == pytest.approx(tokens * PRICE)
    assert log.cost_usd == pytest.approx(tokens * PRICE)
    assert log.usage.input_tokens == 0, "an embedding is not one of the step's model tokens"


async def test_an_embedding_cancelled_in_flight_is_charged_as_estimated(
    tmp_path: Path, provider_server: FakeProviderServer
) -> None:
    provider_server.outage("text-embedding-3-small", fail_with=None, delay_s=5)
    async with httpx.AsyncClient() as http:
        cache = provider_cache(tmp_path, provider_server, http)
        log = CallLog(cache.deps, step_input(TEXT, "run-cut"), 1)
        with pytest.raises(TimeoutError):  # as the learned rule's 2 s bound cancels it
            await asyncio.wait_for(
                cache.learned_rule("acme", "support_triage", "answer", TEXT, log), 0.5
            )

    (row,) = ledger(cache, "run-cut")
    assert (row.call, row.outcome, row.error) == ("embed-1", "error", "cancelled")
    assert row.input_tokens == math.ceil(len(TEXT) / 4) and row.cost_usd > 0
    assert len(provider_server.requests_for("text-embedding-3-small")) == 1


async def test_an_embedding_the_provider_refused_costs_nothing_and_fails_no_step(
    tmp_path: Path, provider_server: FakeProviderServer
) -> None:
    provider_server.outage("text-embedding-3-small", fail_with=503)
    async with httpx.AsyncClient() as http:
        cache = provider_cache(tmp_path, provider_server, http)
        log = CallLog(cache.deps, step_input(TEXT, "run-503"), 1)
        rule = await cache.learned_rule("acme", "support_triage", "answer", TEXT, log)

    assert rule(request_for(TEXT)) is None  # no signal: the step goes on
    (row,) = ledger(cache, "run-503")
    assert (row.call, row.outcome, row.input_tokens, row.cost_usd) == ("embed-1", "error", 0, 0)
