"""The store on SQLite and on PostgreSQL: idempotent ledger rows, spend sums, the audit chain."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from tests.store.conftest import postgres_url
from tether.store.audit import (
    GENESIS,
    AuditEvent,
    AuditSigner,
    append_event,
    events_for,
    use_audit_signer,
    verify_chain,
)
from tether.store.engine import dispose_all, get_engine, session_scope
from tether.store.ledger import (
    BudgetReservation,
    LedgerEntry,
    entries_for_run,
    record_call,
    release_holds_under,
    reserve,
    run_spend,
    set_outcome,
    settle_reservation,
)
from tether.store.spend import SpendScope, spend_by_scope


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    signer = AuditSigner(key=b"test-audit-key-" * 3, head_file=tmp_path / "audit.head")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        use_audit_signer(url, signer)
        yield url
    else:
        url = postgres_url()
        engine = get_engine(url)
        with engine.begin() as conn:
            for table in (
                "ledger_entries",
                "budget_reservations",
                "spend_totals",
                "audit_events",
                "review_items",
            ):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(
                text("UPDATE audit_head SET seq = 0, hash = :genesis, keyed = true"),
                {"genesis": GENESIS},
            )
        use_audit_signer(url, signer)
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
        assert record_call(session, entry(f"{run}/a1/main", run, 0.01))
        assert not record_call(session, entry(f"{run}/a1/main", run, 0.01))
        assert record_call(session, entry(f"{run}/a2/main", run, 0.02))
    with Session(get_engine(db_url)) as session:
        spent, reserved = run_spend(session, run)
        assert len(entries_for_run(session, run)) == 2
    assert spent == pytest.approx(0.03)
    assert reserved == 0


def test_a_call_answered_with_invalid_output_is_marked_and_still_charged(db_url: str) -> None:
    run = f"run-{uuid.uuid4().hex[:6]}"
    with session_scope(db_url) as session:
        record_call(session, entry(f"{run}/a1/main", run, 0.01))
        record_call(session, entry(f"{run}/a1/repair-1", run, 0.02, call="repair-1"))
        set_outcome(session, f"{run}/a1/repair-1", "invalid_output")
    with Session(get_engine(db_url)) as session:
        rows = entries_for_run(session, run)
        assert [(r.call, r.outcome) for r in rows] == [
            ("main", "ok"),
            ("repair-1", "invalid_output"),
        ]
        assert run_spend(session, run) == (pytest.approx(0.03), 0.0)


NOW = datetime(2026, 3, 17, 15, 42, tzinfo=UTC)


def test_spend_counts_per_run_tenant_month_and_user_day(db_url: str) -> None:
    run, tenant = f"run-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    with session_scope(db_url) as session:
        record_call(
            session, entry(f"{run}/x", run, 0.5, tenant=tenant, end_user="u1", created_at=NOW)
        )
        record_call(
            session, entry(f"{run}/y", run, 0.25, tenant=tenant, end_user="u2", created_at=NOW)
        )
        # Yesterday still counts for the month, not for today; last month counts for neither.
        record_call(
            session,
            entry(
                f"{run}/d",
                run,
                2.0,
                tenant=tenant,
                end_user="u1",
                created_at=NOW - timedelta(days=1),
            ),
        )
        record_call(
            session,
            entry(
                f"{run}/m",
                run,
                9.0,
                tenant=tenant,
                end_user="u1",
                created_at=NOW - timedelta(days=40),
            ),
        )
        reserve(session, hold(f"{run}/hold", run, tenant, "u1", 0.1, NOW))
    with session_scope(db_url) as session:
        run_total, month, u1_today, u2_today, other = spend_by_scope(
            session,
            [
                SpendScope.run(run),
                SpendScope.tenant_month(tenant, NOW),
                SpendScope.user_day(tenant, "u1", NOW),
                SpendScope.user_day(tenant, "u2", NOW),
                SpendScope.tenant_month("someone-else", NOW),
            ],
        )
    assert run_total == (pytest.approx(11.75), pytest.approx(0.1))
    assert month == (pytest.approx(2.75), pytest.approx(0.1))
    assert u1_today == (pytest.approx(0.5), pytest.approx(0.1))
    assert u2_today == (pytest.approx(0.25), 0.0)
    assert other == (0.0, 0.0)


def test_a_reservation_holds_until_settled_once(db_url: str) -> None:
    run, tenant = f"run-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    scopes = [SpendScope.run(run), SpendScope.user_day(tenant, "u1", NOW)]
    with session_scope(db_url) as session:
        assert reserve(session, hold(f"{run}/hold", run, tenant, "u1", 0.1, NOW))
        # A retried checkpoint reserves under the same key: held once.
        assert not reserve(session, hold(f"{run}/hold", run, tenant, "u1", 0.1, NOW))
        reserve(session, hold(f"{run}/other", run, tenant, "u1", 0.3, NOW))
    with session_scope(db_url) as session:
        assert spend_by_scope(session, scopes) == [(0.0, pytest.approx(0.4))] * 2
        settle_reservation(session, f"{run}/hold")
        settle_reservation(session, f"{run}/hold")
        assert spend_by_scope(session, scopes) == [(0.0, pytest.approx(0.3))] * 2
        settle_reservation(session, f"{run}/other")
        assert spend_by_scope(session, scopes) == [(0.0, 0.0)] * 2


def test_holds_left_under_a_step_scope_are_released_and_no_others(db_url: str) -> None:
    run, tenant = f"run-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    with session_scope(db_url) as session:
        for key in ("answer/1/c1/a1", "answer/1/c2/a1", "answer/10/c1/a1", "Answer/1/c1/a1"):
            reserve(session, hold(f"{run}/{key}", run, tenant, None, 0.1, NOW))
        reserve(
            session, hold(f"other-{run}/answer/1/c1/a1", f"other-{run}", tenant, None, 0.1, NOW)
        )
        reserve(session, hold(f"{run}/answer/1/c3/a1", run, tenant, None, 0.1, NOW))
        settle_reservation(session, f"{run}/answer/1/c3/a1")
    with session_scope(db_url) as session:
        assert release_holds_under(session, run, f"{run}/answer/1") == 2
        assert release_holds_under(session, run, f"{run}/answer/1") == 0
        assert spend_by_scope(session, [SpendScope.run(run)]) == [(0.0, pytest.approx(0.2))]


@pytest.mark.parametrize(
    ("at", "same_day", "same_month"),
    [
        (
            datetime(2025, 3, 17, 0, 0, tzinfo=UTC),
            datetime(2025, 3, 17, 23, 59, tzinfo=UTC),
            datetime(2025, 3, 1, tzinfo=UTC),
        ),
        # 01:30 in UTC+2 is still the previous day (and month) in UTC.
        (
            datetime(2025, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2025, 3, 31, 12, tzinfo=UTC),
            datetime(2025, 3, 1, tzinfo=UTC),
        ),
        # Databases hand back naive times; they are UTC.
        (
            datetime(2025, 3, 31, 23, 30),
            datetime(2025, 3, 31, 1, tzinfo=UTC),
            datetime(2025, 3, 2, tzinfo=UTC),
        ),
    ],
)
def test_budget_periods_are_utc_days_and_months(
    at: datetime, same_day: datetime, same_month: datetime
) -> None:
    assert SpendScope.user_day("t", "u", at) == SpendScope.user_day("t", "u", same_day)
    assert SpendScope.tenant_month("t", at) == SpendScope.tenant_month("t", same_month)
    assert SpendScope.user_day("t", "u", at) != SpendScope.user_day(
        "t", "u", at + timedelta(days=1)
    )
    assert SpendScope.tenant_month("t", at) != SpendScope.tenant_month("t", at + timedelta(days=31))


def test_names_with_separators_do_not_share_a_scope() -> None:
    assert SpendScope.user_day("a:b", "c", NOW) != SpendScope.user_day("a", "b:c", NOW)


def test_a_database_from_before_running_totals_gets_them_at_startup(db_url: str) -> None:
    run, tenant = f"run-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    with session_scope(db_url) as session:
        record_call(
            session, entry(f"{run}/x", run, 0.5, tenant=tenant, end_user="u1", created_at=NOW)
        )
        reserve(session, hold(f"{run}/open", run, tenant, "u1", 0.2, NOW))
        reserve(session, hold(f"{run}/done", run, tenant, "u1", 0.7, NOW))
        settle_reservation(session, f"{run}/done")
        # What a store written by an older Tether looks like: rows, no totals.
        session.execute(text("DELETE FROM spend_totals"))
    dispose_all()
    scopes = [
        SpendScope.run(run),
        SpendScope.tenant_month(tenant, NOW),
        SpendScope.user_day(tenant, "u1", NOW),
    ]
    with session_scope(db_url) as session:  # a new process opens the database
        assert spend_by_scope(session, scopes) == [(pytest.approx(0.5), pytest.approx(0.2))] * 3
        record_call(
            session, entry(f"{run}/y", run, 0.25, tenant=tenant, end_user="u1", created_at=NOW)
        )
    dispose_all()
    with session_scope(db_url) as session:  # and the next one leaves kept totals alone
        assert spend_by_scope(session, scopes) == [(pytest.approx(0.75), pytest.approx(0.2))] * 3


def test_concurrent_writers_lose_no_spend(db_url: str) -> None:
    run, tenant = f"run-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"

    def writer(w: int) -> None:
        for n in range(25):
            with session_scope(db_url) as session:
                record_call(
                    session, entry(f"{run}/w{w}/{n}", run, 0.01, tenant=tenant, created_at=NOW)
                )

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with session_scope(db_url) as session:
        assert spend_by_scope(session, [SpendScope.tenant_month(tenant, NOW)]) == [
            (pytest.approx(1.0), 0.0)
        ]


def hold(
    key: str, run: str, tenant: str, end_user: str | None, estimate: float, at: datetime
) -> BudgetReservation:
    return BudgetReservation(
        key=key, run_id=run, tenant=tenant, end_user=end_user, estimate_usd=estimate, created_at=at
    )


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
