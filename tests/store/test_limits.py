"""Rate-limit counters on SQLite and PostgreSQL: windows, retries counted once, settling, races."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies.limits import LimitWindow, first_breach
from tests.store.conftest import fresh_store_url
from tether.store.engine import session_scope
from tether.store.limits import (
    LimitSubject,
    charge_windows,
    drop_expired_counters,
    is_charged,
    lock_windows,
    settle_charge,
)

NOW = 1_800_000_030.0  # 30 s into a minute window


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, prefix="tether_limits") as url:
        yield url


def user(name: str, *windows: LimitWindow, tenant: str = "acme") -> LimitSubject:
    return LimitSubject("user", name, windows, (tenant, name))


def take(url: str, key: str, subjects: list[LimitSubject], now: float, tokens: int = 10) -> bool:
    """What a checkpoint does: lock the windows, pass a retry, refuse when full, else count."""
    with session_scope(url) as session:
        counts = lock_windows(session, subjects, now)
        if is_charged(session, key):
            return True
        if first_breach(counts, tokens) is not None:
            return False
        return charge_windows(session, key, subjects, now, tokens)


def counted(url: str, subjects: list[LimitSubject], now: float) -> list[tuple[int, int]]:
    with session_scope(url) as session:
        return [(c.requests, c.tokens) for c in lock_windows(session, subjects, now)]


def test_a_window_refuses_past_its_limit_and_opens_again_when_it_resets(db_url: str) -> None:
    alice = [user("alice", LimitWindow(seconds=60, requests=2))]
    assert take(db_url, "s1", alice, NOW)
    assert take(db_url, "s2", alice, NOW + 1)
    assert not take(db_url, "s3", alice, NOW + 2)
    assert take(db_url, "s3", alice, NOW + 31)  # the next minute


def test_a_retried_step_counts_once_and_passes_even_when_the_window_is_full(db_url: str) -> None:
    alice = [user("alice", LimitWindow(seconds=60, requests=1))]
    assert take(db_url, "run/answer/1/c1", alice, NOW)
    assert take(db_url, "run/answer/1/c1", alice, NOW + 1)  # the activity's second attempt
    assert counted(db_url, alice, NOW) == [(1, 10)]
    assert not take(db_url, "run/answer/1/c2", alice, NOW + 2)


def test_users_and_tenants_are_counted_apart(db_url: str) -> None:
    one = LimitWindow(seconds=60, requests=1)
    tenant_a = LimitSubject("tenant", "a", [LimitWindow(seconds=60, requests=3)], ("a",))
    assert take(db_url, "k1", [user("alice", one, tenant="a"), tenant_a], NOW)
    assert not take(db_url, "k2", [user("alice", one, tenant="a"), tenant_a], NOW)
    # Another user of the tenant, and the same user name in another tenant, still pass.
    assert take(db_url, "k3", [user("bob", one, tenant="a"), tenant_a], NOW)
    assert take(db_url, "k4", [user("alice", one, tenant="b")], NOW)
    assert take(db_url, "k5", [user("carol", one, tenant="a"), tenant_a], NOW)
    # The tenant's window is full now, whatever user asks.
    assert not take(db_url, "k6", [user("dave", one, tenant="a"), tenant_a], NOW)


def test_tokens_are_settled_with_actual_usage_once(db_url: str) -> None:
    window = LimitWindow(seconds=60, tokens=1000)
    provider = LimitSubject("provider", "openai", [window], ("openai",))
    alice = [user("alice", window), provider]
    assert take(db_url, "s1", alice, NOW, tokens=900)
    assert not take(db_url, "s2", alice, NOW, tokens=200)  # 900 estimated + 200 > 1000
    with session_scope(db_url) as session:
        settle_charge(session, "s1", tokens_used=300, provider_calls=3)
        settle_charge(session, "s1", tokens_used=300, provider_calls=3)  # a retried settle
    # The user's window counts the step once; the provider's all three calls it made (a
    # repair and a judge beyond the one call it was counted for).
    assert counted(db_url, alice, NOW) == [(1, 300), (3, 300)]
    assert take(db_url, "s2", alice, NOW, tokens=200)


def test_a_step_larger_than_a_token_window_still_runs_alone(db_url: str) -> None:
    alice = [user("alice", LimitWindow(seconds=60, tokens=100))]
    assert take(db_url, "big", alice, NOW, tokens=5000)
    assert not take(db_url, "next", alice, NOW, tokens=1)


def test_racing_workers_never_pass_more_than_the_limit(db_url: str) -> None:
    limit = 25
    subjects = [
        user("alice", LimitWindow(seconds=60, requests=limit)),
        LimitSubject("provider", "openai", [LimitWindow(seconds=60, requests=1000)], ("openai",)),
    ]
    passed: list[str] = []
    start = threading.Barrier(8)

    def worker(w: int) -> None:
        start.wait()
        for n in range(10):
            key = f"{uuid.uuid4().hex}/w{w}/{n}"
            if take(db_url, key, subjects, NOW):
                passed.append(key)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == limit
    assert counted(db_url, subjects, NOW) == [(limit, limit * 10), (limit, limit * 10)]


def test_old_windows_are_dropped(db_url: str) -> None:
    alice = [user("alice", LimitWindow(seconds=60, requests=1))]
    assert take(db_url, "old", alice, NOW - 3 * 86_400)
    assert take(db_url, "new", alice, NOW)
    with session_scope(db_url) as session:
        assert drop_expired_counters(session, NOW) == 1
    assert counted(db_url, alice, NOW) == [(1, 10)]
