"""The store on SQLite and on PostgreSQL: idempotent ledger rows, spend sums, the audit chain."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from tether.store.audit import AuditEvent, append_event, events_for, verify_chain
from tether.store.engine import dispose_all, get_engine, session_scope
from tether.store.ledger import (
    BudgetReservation,
    LedgerEntry,
    SpendScope,
    entries_for_run,
    insert_once,
    run_spend,
    set_outcome,
    settle_reservation,
    spend_by_scope,
)


def _postgres_url() -> str:
    url = os.environ.get("TETHER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TETHER_TEST_POSTGRES_URL is not set: run the suite through `make test`")
        pytest.skip("no PostgreSQL: run through `make test` (scripts/test-services.sh starts one)")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = _postgres_url()
        engine = get_engine(url)
        with engine.begin() as conn:
            for table in ("ledger_entries", "budget_reservations", "audit_events", "review_items"):
                conn.execute(text(f"DELETE FROM {table}"))
        yield url
    dispose_all()


def entry(key: str, run_id: str, cost: float, **extra: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "key": key,
        "run_id": run_id,
        "workflow": "wf",
        "step": "s",
        "tenant": "acme",
        "call": "main",
        "activity_attempt": 1,
        "model": "simulated/cheap",
        "provider": "simulated",
        "cost_usd": cost,
        "outcome": "ok",
    }
    return LedgerEntry.model_validate(fields | extra)


def test_a_ledger_row_is_written_once_per_key(db_url: str) -> None:
    run = f"run-{uuid.uuid4().hex[:6]}"
    with session_scope(db_url) as session:
        assert insert_once(session, entry(f"{run}/a1/main", run, 0.01))
        assert not insert_once(session, entry(f"{run}/a1/main", run, 0.01))
        assert insert_once(session, entry(f"{run}/a2/main", run, 0.02))
    with Session(get_engine(db_url)) as session:
        spent, reserved = run_spend(session, run)
    assert spent == pytest.approx(0.03)
    assert reserved == 0


def test_a_call_answered_with_invalid_output_is_marked_and_still_charged(db_url: str) -> None:
    run = f"run-{uuid.uuid4().hex[:6]}"
    with session_scope(db_url) as session:
        insert_once(session, entry(f"{run}/a1/main", run, 0.01))
        insert_once(session, entry(f"{run}/a1/repair-1", run, 0.02, call="repair-1"))
        set_outcome(session, f"{run}/a1/repair-1", "invalid_output")
    with Session(get_engine(db_url)) as session:
        rows = entries_for_run(session, run)
        assert [(r.call, r.outcome) for r in rows] == [
            ("main", "ok"),
            ("repair-1", "invalid_output"),
        ]
        assert run_spend(session, run) == (pytest.approx(0.03), 0.0)


def test_reservations_count_until_settled_and_scopes_filter(db_url: str) -> None:
    run = f"run-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    with session_scope(db_url) as session:
        insert_once(session, entry(f"{run}/x", run, 0.5, end_user="u1"))
        insert_once(session, entry(f"{run}/y", run, 0.25, end_user="u2"))
        insert_once(
            session,
            entry(f"{run}/old", run, 9.0, end_user="u1", created_at=now - timedelta(days=40)),
        )
        insert_once(
            session,
            BudgetReservation(
                key=f"{run}/hold", run_id=run, tenant="acme", end_user="u1", estimate_usd=0.1
            ),
        )
    with session_scope(db_url) as session:
        day = now - timedelta(days=1)
        user_u1, acme, other = spend_by_scope(
            session,
            [
                SpendScope(tenant="acme", end_user="u1", since=day),
                SpendScope(tenant="acme", since=day),
                SpendScope(tenant="other", since=day),
            ],
        )
        assert user_u1 == (pytest.approx(0.5), pytest.approx(0.1))
        assert acme[0] == pytest.approx(0.75)
        assert other == (0.0, 0.0)
        settle_reservation(session, f"{run}/hold")
    with Session(get_engine(db_url)) as session:
        assert run_spend(session, run) == (pytest.approx(9.75), 0.0)


def test_the_audit_log_is_a_hash_chain_that_detects_tampering(db_url: str) -> None:
    with session_scope(db_url) as session:
        for n in range(5):
            append_event(
                session,
                key=f"e{n}",
                kind="review_decided",
                actor="bob",
                run_id="r1",
                detail={"n": n},
            )
        again = append_event(session, key="e2", kind="review_decided", actor="bob", run_id="r1")
        assert again.detail == {"n": 2}, "the same key must not append a second event"
    with Session(get_engine(db_url)) as session:
        assert len(events_for(session, run_id="r1")) == 5
        assert verify_chain(session) is None
    with session_scope(db_url) as session:
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    with Session(get_engine(db_url)) as session:
        assert verify_chain(session) == 3


def test_concurrent_writers_keep_one_linear_audit_chain(db_url: str) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for n in range(10):
                with session_scope(db_url) as session:
                    append_event(
                        session, key=f"w{worker}-{n}", kind="model_call", actor=f"w{worker}"
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with Session(get_engine(db_url)) as session:
        assert len(session.exec(select(AuditEvent)).all()) == 40
        assert verify_chain(session) is None
