"""A worker keeps the vector indexes of at most ``MAX_INDEXES`` cache partitions, the least
recently asked dropped first: its memory stays bounded, and a dropped partition is rebuilt from
the store when asked again (its answers are still found). Real store (SQLite), real
all-MiniLM-L6-v2."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from activities import step_cache
from activities.deps import ActivityDeps
from activities.providers.base import ChatMessage
from activities.providers.registry import ProviderRegistry
from activities.step_cache import CacheKey, StepCache
from policies.loader import load_policy
from tests.conftest import make_settings
from tether.contracts import LlmStepInput, PromptTemplate
from tether.store.audit_key import configure_audit
from tether.store.engine import upgrade_database

PROMPT = PromptTemplate(id="support.answer", version="3", system="Answer.", user="{text}")
STEPS = ["answer", "classify", "extract", "draft_reply", "summarise"]


def key_for(cache: StepCache, step: str, text: str) -> tuple[CacheKey, LlmStepInput]:
    inp = LlmStepInput(
        run_id=f"run-{step}-{len(text)}",
        workflow="support_triage",
        step=step,
        tenant="acme",
        prompt=PROMPT,
        variables={"text": text},
        output_model="tests.workflows.sample_workflows:Answer",
        idempotency_key=f"run-{step}/{step}",
    )
    messages = [ChatMessage(role="user", content=text)]
    key = cache.key_for(inp, "simulated/cheap", messages, inp.variables)
    assert key is not None
    return key, inp


async def test_a_worker_keeps_a_bounded_number_of_partition_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(step_cache, "MAX_INDEXES", 2)
    settings = make_settings(tmp_path, "localhost:1")
    upgrade_database(settings.resolved_database_url)
    configure_audit(settings)
    async with httpx.AsyncClient() as http:
        deps = ActivityDeps(settings, load_policy(), ProviderRegistry(settings, http))
        cache = StepCache(deps)
        for step in STEPS:
            key, inp = key_for(cache, step, "How do I reset my password?")
            await cache.remember(
                key,
                inp,
                output={"answer": step, "sure": True},
                raw_output="{}",
                output_digest=f"sha256:{step}",
                confidence={"score": 0.9},
                provider="simulated",
                held=False,
            )
        for _ in range(2):  # the second round asks partitions dropped in the first
            for step in STEPS:
                key, _ = key_for(cache, step, "How can I reset my password?")
                hit = await cache.lookup(key)
                assert hit is not None and hit.kind == "semantic_hit"
                assert hit.entry.output == {"answer": step, "sure": True}
                assert len(cache._indexes) <= 2
        # The most recently asked partitions are the ones kept.
        kept = {partition for partition, _ in cache._indexes}
        assert kept == {key_for(cache, s, "x")[0].partition for s in STEPS[-2:]}
