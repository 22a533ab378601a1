"""Pruning dead store rows on SQLite and PostgreSQL: expired cache entries go, live ones and the
verdicts the learned routing rule reads stay; rate-limit counters and charges of windows that
ended long ago go, the current window's stay; ``tether prune`` prints what it deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from policies.limits import LimitWindow
from policies.retention_settings import RetentionPolicy
from tests.store.conftest import fresh_store_url
from tether.cli import main
from tether.core.settings import Settings
from tether.store.audit import append_event
from tether.store.audit_chain import AuditEvent
from tether.store.audit_key import configure_audit
from tether.store.cache import CacheEntry, insert_entry, route_scope, verdict_vectors
from tether.store.engine import session_scope, upgrade_database
from tether.store.limits import (
    LimitCharge,
    LimitCounter,
    LimitSubject,
    charge_windows,
    is_charged,
    lock_windows,
)
from tether.store.retention import prune_cache_batch, prune_store

NOW = datetime(2027, 3, 1, 12, 0, 30, tzinfo=UTC)
SCOPE = route_scope("acme", "support_triage", "answer")
OTHER_SCOPE = route_scope("acme", "support_triage", "classify")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, prefix="tether_retention") as url:
        upgrade_database(url)
        yield url


def vector(seed: int) -> bytes:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return (v / np.linalg.norm(v)).tobytes()


def entry(
    name: str,
    *,
    expires_in: timedelta,
    verdict: str | None = None,
    evicted: bool = False,
    embedded: bool = True,
    scope: str = SCOPE,
    age: timedelta = timedelta(days=1),
    held: bool = False,
) -> CacheEntry:
    return CacheEntry(
        partition=f"p-{scope}",
        route_scope=scope,
        tenant="acme",
        workflow="support_triage",
        step="answer",
        prompt_version="support.answer@3",
        model="simulated/cheap",
        input_digest=f"in-{name}",
        embedder="local/minilm" if embedded else None,
        embedding=vector(hash(name) % 10_000) if embedded else None,
        output={"answer": name},
        raw_output="{}",
        output_digest=f"out-{name}",
        confidence={"score": 0.9},
        provider="simulated",
        source_run_id=f"run-{name}",
        created_at=NOW - age,
        expires_at=NOW + expires_in,
        held=held,
        approved=verdict == "approved",
        verdict=verdict,
        evicted_at=NOW - timedelta(hours=1) if evicted else None,
    )


def add(url: str, *entries: CacheEntry) -> None:
    with session_scope(url) as session:
        for e in entries:
            insert_entry(session, e)


def remaining(url: str) -> set[str]:
    with session_scope(url) as session:
        return set(session.execute(select(CacheEntry.output_digest)).scalars())  # type: ignore[call-overload]


def test_expired_entries_go_live_ones_and_verdicts_stay(db_url: str) -> None:
    add(
        db_url,
        entry("expired", expires_in=-timedelta(minutes=1)),
        entry("expired-held", expires_in=-timedelta(days=2), held=True),
        entry(
            "expired-no-vector",
            expires_in=-timedelta(days=1),
            verdict="rejected",
            evicted=True,
            embedded=False,
        ),
        entry("live", expires_in=timedelta(days=3)),
        entry("live-held", expires_in=timedelta(days=3), held=True),
        entry("live-approved", expires_in=timedelta(days=3), verdict="approved"),
        entry("rejected", expires_in=timedelta(days=3), verdict="rejected", evicted=True),
        entry("edited-expired", expires_in=-timedelta(days=5), verdict="edited", evicted=True),
        entry("approved-expired", expires_in=-timedelta(days=5), verdict="approved"),
    )
    counts = prune_store(db_url, RetentionPolicy(), now=NOW)
    assert counts.cache_entries == 3
    assert remaining(db_url) == {
        "out-live",
        "out-live-held",
        "out-live-approved",
        "out-rejected",
        "out-edited-expired",
        "out-approved-expired",
    }
    # A second prune finds nothing more.
    assert prune_store(db_url, RetentionPolicy(), now=NOW).cache_entries == 0


def test_verdicts_go_only_beyond_the_newest_the_learned_rule_reads(db_url: str) -> None:
    """keep=3 here (5,000 in the policy): the rule's view of the newest 3 is the same after."""
    old = [
        entry(f"v{i}", expires_in=-timedelta(days=1), verdict="rejected", evicted=True)
        for i in range(6)
    ]
    add(db_url, *old)
    add(db_url, entry("v-live", expires_in=timedelta(days=1), verdict="approved"))
    add(
        db_url,
        entry(
            "other",
            expires_in=-timedelta(days=1),
            verdict="edited",
            evicted=True,
            scope=OTHER_SCOPE,
        ),
    )
    with session_scope(db_url) as session:
        before = verdict_vectors(session, SCOPE, "local/minilm", limit=3)
        deleted = prune_cache_batch(session, NOW, 3, timedelta(days=365), limit=100)
    # Newest 3 of the scope: v-live (live, stays anyway), v5, v4; v0..v3 go. The other step's
    # one verdict is within its own newest 3.
    assert deleted == 4
    assert remaining(db_url) == {"out-v-live", "out-v5", "out-v4", "out-other"}
    with session_scope(db_url) as session:
        assert verdict_vectors(session, SCOPE, "local/minilm", limit=3) == before


def test_verdicts_older_than_the_policy_keeps_them_go(db_url: str) -> None:
    add(
        db_url,
        entry(
            "ancient",
            expires_in=-timedelta(days=400),
            verdict="rejected",
            evicted=True,
            age=timedelta(days=407),
        ),
        entry("recent", expires_in=-timedelta(days=1), verdict="rejected", evicted=True),
    )
    policy = RetentionPolicy(verdict_max_age=timedelta(days=365))
    assert prune_store(db_url, policy, now=NOW).cache_entries == 1
    assert remaining(db_url) == {"out-recent"}


def test_a_prune_deletes_in_batches_and_stops_after_its_most(db_url: str) -> None:
    add(db_url, *[entry(f"e{i}", expires_in=-timedelta(hours=1)) for i in range(25)])
    policy = RetentionPolicy(batch_rows=10, max_batches=2)
    assert prune_store(db_url, policy, now=NOW).cache_entries == 20
    assert prune_store(db_url, policy, now=NOW).cache_entries == 5
    assert remaining(db_url) == set()


def user(name: str) -> LimitSubject:
    windows = (LimitWindow(seconds=60, requests=100), LimitWindow(seconds=3600, requests=1000))
    return LimitSubject("user", name, windows, ("acme", name))


def test_counters_and_charges_of_old_windows_go_the_current_ones_stay(db_url: str) -> None:
    now = NOW.timestamp()
    two_days_ago = now - 2 * 86_400
    with session_scope(db_url) as session:
        for key, name, at in [
            ("old-step", "alice", two_days_ago),
            ("legacy-step", "bob", two_days_ago),
            ("current-step", "alice", now),
            ("legacy-now", "carol", now),
        ]:
            lock_windows(session, [user(name)], at)  # as a checkpoint: makes the counters
            assert charge_windows(session, key, [user(name)], at, tokens=10)
        # Charges made before they carried their window's end.
        session.execute(
            update(LimitCharge)
            .where(LimitCharge.key.in_(["legacy-step", "legacy-now"]))  # type: ignore[attr-defined]
            .values(ends_at=None)
        )
    counts = prune_store(db_url, RetentionPolicy(), now=NOW)
    assert (counts.limit_counters, counts.limit_charges) == (4, 2)
    with session_scope(db_url) as session:
        assert not is_charged(session, "old-step")
        assert not is_charged(session, "legacy-step")
        assert is_charged(session, "current-step")  # a retried step still counts once
        assert is_charged(session, "legacy-now")
        left = session.execute(select(func.count()).select_from(LimitCounter)).scalar_one()
    assert left == 4  # alice's and carol's minute and hour windows of now


def test_tether_prune_prints_what_it_deleted_and_never_touches_the_audit_log(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    monkeypatch.setenv("TETHER_DATABASE_URL", db_url)
    configure_audit(Settings.from_env())
    now = datetime.now(UTC)
    add(db_url, entry("expired", expires_in=(now - NOW) - timedelta(hours=1)))
    add(db_url, entry("live", expires_in=(now - NOW) + timedelta(hours=1)))
    with session_scope(db_url) as session:
        lock_windows(session, [user("alice")], now.timestamp() - 3 * 86_400)
        charge_windows(
            session, f"s-{uuid.uuid4().hex}", [user("alice")], now.timestamp() - 3 * 86_400, 5
        )
        append_event(session, key="k1", kind="cache_evicted", actor="tether", detail={})
    assert main(["prune"]) == 0
    out = capsys.readouterr().out
    assert "pruned 1 cache entries, 2 rate-limit counters, 1 rate-limit charges" in out
    assert remaining(db_url) == {"out-live"}
    with session_scope(db_url) as session:
        assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 1
