"""The retention job in a real worker (real Temporal dev server, real SQLite store): it prunes on
its interval, and a failed prune is logged without stopping the worker or the next prunes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.client import Client

from activities import retention
from policies.models import TetherPolicy
from policies.retention_settings import RetentionPolicy
from tether.core.settings import Settings
from tether.store.cache import CacheEntry, insert_entry
from tether.store.engine import session_scope
from tether.worker import running_worker

pytestmark = pytest.mark.integration


def expired_entry(name: str) -> CacheEntry:
    now = datetime.now(UTC)
    return CacheEntry(
        partition="p",
        route_scope="r",
        tenant="acme",
        workflow="support_triage",
        step="classify",
        prompt_version="triage.classify@1",
        model="simulated/cheap",
        input_digest=f"in-{name}",
        output={"answer": name},
        raw_output="{}",
        output_digest=f"out-{name}",
        confidence={},
        provider="simulated",
        source_run_id="run-1",
        created_at=now - timedelta(days=8),
        expires_at=now - timedelta(days=1),
    )


def cache_rows(url: str) -> list[str]:
    with session_scope(url) as session:
        return list(session.execute(select(CacheEntry.output_digest)).scalars())  # type: ignore[call-overload]


async def wait_until_empty(url: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while cache_rows(url):
        assert asyncio.get_running_loop().time() < deadline, "the worker never pruned"
        await asyncio.sleep(0.1)


async def test_a_worker_prunes_on_its_interval_and_survives_a_failed_prune(
    client: Client,
    settings: Settings,
    policy: TetherPolicy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = settings.resolved_database_url
    quick = policy.model_copy(
        update={"retention": RetentionPolicy(every=timedelta(milliseconds=200))}
    )
    real_prune = retention.prune_store
    calls = 0

    def flaky_prune(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the store is away")
        return real_prune(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(retention, "prune_store", flaky_prune)
    caplog.set_level(logging.INFO)
    async with running_worker(client, settings, policy=quick):
        with session_scope(url) as session:
            insert_entry(session, expired_entry("first"))
        await wait_until_empty(url)
        # The count line is logged once the prune's last batch is committed: just after.
        for _ in range(100):
            if "retention: pruned 1 cache entries" in caplog.text:
                break
            await asyncio.sleep(0.1)
        assert calls >= 2
        assert "retention: prune failed: RuntimeError" in caplog.text
        assert "retention: pruned 1 cache entries" in caplog.text
        # It keeps pruning: a row that expires later goes on a later prune.
        with session_scope(url) as session:
            insert_entry(session, expired_entry("second"))
        await wait_until_empty(url)


async def test_a_policy_with_retention_off_prunes_nothing(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    url = settings.resolved_database_url
    off = policy.model_copy(
        update={"retention": RetentionPolicy(enabled=False, every=timedelta(milliseconds=100))}
    )
    async with running_worker(client, settings, policy=off):
        with session_scope(url) as session:
            insert_entry(session, expired_entry("kept"))
        await asyncio.sleep(1.0)
        assert cache_rows(url) == ["out-kept"]
