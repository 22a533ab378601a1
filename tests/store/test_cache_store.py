"""The step cache's queries on SQLite and PostgreSQL: exact lookup (an approved answer first),
live vectors newer than an index has seen, verdicts that evict, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    doubt_entry,
    entries_by_id,
    exact_entry,
    insert_entry,
    live_vectors_since,
    mark_verified,
    record_verdict,
    route_scope,
    verdict_vectors,
)
from tether.store.engine import session_scope, upgrade_database

SCOPE = route_scope("acme", "support_triage", "answer")


@contextmanager
def audited_store(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated store of ``kind`` whose audit log has its key."""
    with fresh_store_url(kind, tmp_path) as url:
        upgrade_database(url)
        configure_audit(make_settings(tmp_path, "localhost:1", TETHER_DATABASE_URL=url))
        yield url


def entry(
    digest: str,
    answer: str,
    *,
    expires_in: timedelta = timedelta(days=1),
    run: str = "run-1",
    held: bool = False,
) -> CacheEntry:
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
        source_run_id=run,
        held=held,
        created_at=now,
        expires_at=now + expires_in,
    )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_cache_queries(kind: str, tmp_path: Path) -> None:
    with audited_store(kind, tmp_path) as url:
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
            assert record_verdict(
                session, "acme", "support_triage", "answer", "out-a", "approve", run_id="run-1"
            )
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


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("kind", STORES)
def test_an_approval_releases_only_the_reviewed_runs_own_answer(kind: str, tmp_path: Path) -> None:
    with audited_store(kind, tmp_path) as url:
        with session_scope(url) as session:
            # Two inputs got the same answer and both wait for a reviewer.
            mine = insert_entry(session, entry("in-a", "billing", run="run-a", held=True))
            other = insert_entry(session, entry("in-b", "billing", run="run-b", held=True))
        with session_scope(url) as session:
            record_verdict(
                session,
                "acme",
                "support_triage",
                "answer",
                "out-billing",
                "approve",
                run_id="run-a",
            )
        with session_scope(url) as session:
            assert exact_entry(session, "p1", "in-a") is not None
            # Nobody approved that answer for the other input: still held, not served.
            assert exact_entry(session, "p1", "in-b") is None
            (held,) = entries_by_id(session, [other.id or 0])
            assert held.held and not held.approved and mine.id != other.id


@pytest.mark.parametrize("kind", STORES)
def test_a_check_racing_a_reviewer_never_serves_an_evicted_answer_or_evicts_an_approved_one(
    kind: str, tmp_path: Path
) -> None:
    with audited_store(kind, tmp_path) as url:
        with session_scope(url) as session:
            rejected = insert_entry(session, entry("in-1", "a"))
            approved = insert_entry(session, entry("in-2", "b"))
            record_verdict(session, "acme", "support_triage", "answer", "out-a", "reject")
            record_verdict(
                session, "acme", "support_triage", "answer", "out-b", "approve", run_id="run-1"
            )
        with session_scope(url) as session:
            # The judge's check ends after the reviewer decided: its grade loses.
            assert not mark_verified(session, rejected.id or 0)
            assert not doubt_entry(session, approved.id or 0, same_input=True)
        with session_scope(url) as session:
            assert exact_entry(session, "p1", "in-2") is not None
            assert exact_entry(session, "p1", "in-1") is None


@pytest.mark.parametrize("kind", STORES)
def test_an_edit_is_kept_for_its_run_when_a_duplicate_was_evicted_first(
    kind: str, tmp_path: Path
) -> None:
    with audited_store(kind, tmp_path) as url:
        with session_scope(url) as session:
            insert_entry(session, entry("in-a", "wrong", run="run-a", held=True))
            insert_entry(session, entry("in-b", "wrong", run="run-b", held=True))
        for run, written in (("run-a", "right for a"), ("run-b", "right for b")):
            with session_scope(url) as session:
                record_verdict(
                    session,
                    "acme",
                    "support_triage",
                    "answer",
                    "out-wrong",
                    "edit",
                    run_id=run,
                    edited_output={"answer": written},
                )
        with session_scope(url) as session:
            # The first edit evicted both (same answer); the second is still kept for its input.
            for digest, written in (("in-a", "right for a"), ("in-b", "right for b")):
                kept = exact_entry(session, "p1", digest)
                assert kept is not None and kept.output == {"answer": written} and kept.approved


@pytest.mark.parametrize("kind", STORES)
def test_the_same_answer_to_the_same_input_is_kept_once(kind: str, tmp_path: Path) -> None:
    with fresh_store_url(kind, tmp_path) as url:
        upgrade_database(url)
        with session_scope(url) as session:
            first = insert_entry(session, entry("in-1", "a", held=True))
            again = insert_entry(session, entry("in-1", "a", held=True))
            assert again.id == first.id
            assert len(entries_by_id(session, [first.id or 0, (first.id or 0) + 1])) == 1
