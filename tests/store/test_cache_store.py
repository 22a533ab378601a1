"""The step cache's queries on SQLite and PostgreSQL: exact lookup (an approved answer first),
live vectors newer than an index has seen, verdicts that evict, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.store.conftest import fresh_store_url
from tether.store.audit import events_for
from tether.store.audit_key import configure_audit
from tether.store.cache import (
    CacheEntry,
    entries_by_id,
    exact_entry,
    insert_entry,
    live_vectors_since,
    record_verdict,
    route_scope,
    verdict_vectors,
)
from tether.store.engine import session_scope, upgrade_database

SCOPE = route_scope("acme", "support_triage", "answer")


def entry(digest: str, answer: str, *, expires_in: timedelta = timedelta(days=1)) -> CacheEntry:
    now = datetime.now(UTC)
    return CacheEntry(
        partition="p1",
        route_scope=SCOPE,
        tenant="acme",
        workflow="support_triage",
        step="answer",
        prompt_version="support.answer@3",
        model="simulated/cheap",
        input_digest=digest,
        embedder="local/all-MiniLM-L6-v2",
        embedding=np.ones(4, dtype=np.float32).tobytes(),
        output={"answer": answer},
        raw_output="{}",
        output_digest=f"out-{answer}",
        confidence={"score": 0.9},
        provider="simulated",
        source_run_id="run-1",
        created_at=now,
        expires_at=now + expires_in,
    )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_cache_queries(kind: str, tmp_path: Path) -> None:
    with fresh_store_url(kind, tmp_path) as url:
        upgrade_database(url)
        configure_audit(make_settings(tmp_path, "localhost:1", TETHER_DATABASE_URL=url))
        with session_scope(url) as session:
            first = insert_entry(session, entry("in-1", "a"))
            second = insert_entry(session, entry("in-1", "b"))
            insert_entry(session, entry("in-2", "old", expires_in=timedelta(seconds=-1)))
            third = insert_entry(session, entry("in-3", "c"))
        assert first.id and second.id and third.id
        with session_scope(url) as session:
            found = exact_entry(session, "p1", "in-1")
            assert found is not None and found.output == {"answer": "b"}  # the newest
            assert exact_entry(session, "p1", "in-2") is None  # expired
            assert record_verdict(session, "acme", "support_triage", "answer", "out-a", "approve")
        with session_scope(url) as session:
            found = exact_entry(session, "p1", "in-1")
            assert found is not None and found.output == {"answer": "a"} and found.approved
            assert [i for i, _ in live_vectors_since(session, "p1", found.embedder or "", 0)] == [
                first.id,
                second.id,
                third.id,
            ]
            assert [i for i, _ in live_vectors_since(session, "p1", "other", 0)] == []
            assert record_verdict(session, "acme", "support_triage", "answer", "out-c", "edit")
            # A reviewer's retry asked for another answer: the one retried is not served again.
            assert record_verdict(session, "acme", "support_triage", "answer", "out-b", "retry")
        with session_scope(url) as session:
            assert [e.id for e in entries_by_id(session, [first.id, third.id])] == [first.id]
            assert [i for i, _ in live_vectors_since(session, "p1", found.embedder or "", 1)] == []
            verdicts = verdict_vectors(session, SCOPE, "local/all-MiniLM-L6-v2")
            assert sorted(v for v, _ in verdicts) == ["approved", "edited", "rejected"]
            assert [e.kind for e in events_for(session)] == ["cache_evicted", "cache_evicted"]
