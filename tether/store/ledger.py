"""The cost ledger: one row per provider call, and budget reservations made by checkpoints.

Rows carry idempotency keys with unique constraints because an activity can run more than once;
writing the same key twice is a no-op, so a retried activity never counts a call twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from tether.store.audit_records import record_model_call
from tether.store.spend import (
    SpendScope,
    add_to_totals,
    has_totals,
    replace_totals,
    scopes_charged,
    spend_by_scope,
    to_nanos,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class LedgerEntry(SQLModel, table=True):
    """One provider call (successful or not) and what it cost."""

    __tablename__ = "ledger_entries"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=400)
    run_id: str = Field(index=True, max_length=200)
    workflow: str = Field(max_length=100)
    step: str = Field(max_length=100)
    tenant: str = Field(index=True, max_length=100)
    end_user: str | None = Field(default=None, index=True, max_length=200)
    call: str = Field(max_length=40)
    activity_attempt: int
    model: str = Field(max_length=200)
    provider: str = Field(max_length=40)
    simulated: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    outcome: str = Field(max_length=20)
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class BudgetReservation(SQLModel, table=True):
    """An estimated cost held by a checkpoint until its step settles."""

    __tablename__ = "budget_reservations"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=400)
    run_id: str = Field(index=True, max_length=200)
    tenant: str = Field(index=True, max_length=100)
    end_user: str | None = Field(default=None, index=True, max_length=200)
    estimate_usd: float
    model: str | None = Field(default=None, max_length=200)
    """The step's model when the hold was made: named on the ledger row of an estimated charge."""
    settled: bool = Field(default=False, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)


# Statements below are built once and executed with parameters: SQLAlchemy then reuses their
# cache keys and compiled forms, which matters at a few statements per model call.


def insert_once(session: Session, row: SQLModel) -> bool:
    """Insert ``row`` unless a row with one of its unique keys exists. Returns True when inserted.

    One ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL): no savepoint, no flush,
    and ``row`` is not added to the session (read it back with a query when needed).
    """
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {
        column.name: getattr(row, column.name)
        for column in table.columns
        if not (column.primary_key and getattr(row, column.name) is None)
    }
    statement = _insert_statement(table, session.get_bind().dialect.name)
    return session.execute(statement, values).first() is not None


@lru_cache(maxsize=32)
def _insert_statement(table: Table, dialect: str) -> Any:
    insert: Any = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[dialect]
    # RETURNING names the inserted row; rowcount is not reliable across drivers for this.
    return insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)


def run_spend(session: Session, run_id: str) -> tuple[float, float]:
    """(spent, still reserved) for one run."""
    return spend_by_scope(session, [SpendScope.run(run_id)])[0]


def record_call(session: Session, entry: LedgerEntry) -> bool:
    """Write a provider call to the ledger and charge it to its budget scopes, once per key.

    Returns True when this call was new.
    """
    inserted = insert_once(session, entry)
    if inserted:
        add_to_totals(session, _scopes_of(entry), spent=entry.cost_usd)
        record_model_call(session, entry)  # last: the audit head's lock is held to the commit
    return inserted


def reserve(session: Session, reservation: BudgetReservation) -> bool:
    """Hold a checkpoint's estimate against its budget scopes, once per key."""
    inserted = insert_once(session, reservation)
    if inserted:
        add_to_totals(session, _scopes_of(reservation), reserved=reservation.estimate_usd)
    return inserted


# Hot statements name tables, not ORM classes, so the session runs them as plain Core.
_RESERVATIONS = BudgetReservation.__table__  # type: ignore[attr-defined]
_ENTRIES = LedgerEntry.__table__  # type: ignore[attr-defined]


def _charged(table: Any, amount: str) -> list[Any]:
    """What a row charges, and where: run_id, tenant, end_user, the amount, created_at."""
    columns = table.c
    return [columns.run_id, columns.tenant, columns.end_user, columns[amount], columns.created_at]


_HOLD_CHARGE = _charged(_RESERVATIONS, "estimate_usd")
_SETTLE = (
    update(_RESERVATIONS)
    .where(_RESERVATIONS.c.key == bindparam("hold_key"))
    .where(_RESERVATIONS.c.settled.is_(False))
    .values(settled=True)
    .returning(*_HOLD_CHARGE)
)
_RELEASE_UNDER = (
    update(_RESERVATIONS)
    .where(_RESERVATIONS.c.run_id == bindparam("run"))
    # A prefix by equality: LIKE folds case on SQLite and ranges follow collations on PostgreSQL.
    .where(func.substr(_RESERVATIONS.c.key, 1, bindparam("width")) == bindparam("under"))
    .where(_RESERVATIONS.c.settled.is_(False))
    .values(settled=True)
    .returning(*_HOLD_CHARGE)
)
_SET_OUTCOME = (
    update(_ENTRIES)
    .where(_ENTRIES.c.key == bindparam("entry_key"))
    .values(outcome=bindparam("new_outcome"))
)


def settle_reservation(session: Session, key: str) -> None:
    """Release a reservation's hold; settling twice releases it once."""
    _uncount_holds(session, session.execute(_SETTLE, {"hold_key": key}).all())


def release_holds_under(session: Session, run_id: str, prefix: str) -> int:
    """Release every unsettled reservation of ``run_id`` whose key is under ``prefix/``: holds
    of earlier attempts whose worker died before releasing them. Returns how many it released."""
    under = f"{prefix}/"
    released = session.execute(
        _RELEASE_UNDER, {"run": run_id, "width": len(under), "under": under}
    ).all()
    _uncount_holds(session, released)
    return len(released)


def _uncount_holds(session: Session, released: Sequence[Any]) -> None:
    """Take holds just marked settled (rows of ``_HOLD_CHARGE``) off their scopes' totals."""
    for run_id, tenant, end_user, estimate, created_at in released:
        add_to_totals(
            session, scopes_charged(run_id, tenant, end_user, created_at), reserved=-estimate
        )


ESTIMATED = "estimated"
"""The ledger outcome of a charge made from a hold, for calls that may have reached a provider
but whose usage was never reported (the worker died or the attempt was cancelled mid-call)."""

# RETURNING adds to the columns already returned: the hold's charge, then its key and model.
_CHARGE_UNDER = _RELEASE_UNDER.returning(_RESERVATIONS.c.key, _RESERVATIONS.c.model)
_CHARGE_KEY = _SETTLE.returning(_RESERVATIONS.c.key, _RESERVATIONS.c.model)
_RECORDED_UNDER = (
    core_select(func.coalesce(func.sum(_ENTRIES.c.cost_usd), 0.0))
    .where(_ENTRIES.c.run_id == bindparam("run"))
    .where(func.substr(_ENTRIES.c.key, 1, bindparam("width")) == bindparam("under"))
)


def charge_holds_under(
    session: Session, run_id: str, prefix: str, *, workflow: str, step: str
) -> int:
    """Charge every unsettled hold of ``run_id`` under ``prefix/`` at its reserved amount: holds
    of earlier attempts whose worker died, maybe mid-call. Returns how many it charged."""
    under = f"{prefix}/"
    held = session.execute(
        _CHARGE_UNDER, {"run": run_id, "width": len(under), "under": under}
    ).all()
    _charge_estimated(session, held, workflow=workflow, step=step)
    return len(held)


def charge_hold(session: Session, key: str, *, workflow: str, step: str) -> bool:
    """Charge the hold ``key`` at its reserved amount (an attempt cut off mid-call); charging
    or settling twice charges once. Returns True when it charged."""
    held = session.execute(_CHARGE_KEY, {"hold_key": key}).all()
    _charge_estimated(session, held, workflow=workflow, step=step)
    return bool(held)


def _charge_estimated(session: Session, held: Sequence[Any], *, workflow: str, step: str) -> None:
    """Turn holds just marked settled (rows of ``_CHARGE_KEY``) into ``estimated`` ledger rows.

    A hold is the attempt's worst case; the calls the attempt recorded before it died are
    already on the ledger, so the row charges the rest, and the attempt costs its hold in all.
    """
    for run_id, tenant, end_user, estimate, created_at, key, model in held:
        add_to_totals(
            session, scopes_charged(run_id, tenant, end_user, created_at), reserved=-estimate
        )
        under = f"{key}/"
        recorded = session.execute(
            _RECORDED_UNDER, {"run": run_id, "width": len(under), "under": under}
        ).scalar_one()
        model_id = model or "unknown"
        record_call(
            session,
            LedgerEntry(
                key=f"{key}/{ESTIMATED}",
                run_id=run_id,
                workflow=workflow,
                step=step,
                tenant=tenant,
                end_user=end_user,
                call=ESTIMATED,
                activity_attempt=0,
                model=model_id,
                provider=model_id.split("/", 1)[0],
                cost_usd=max(0.0, round(estimate - float(recorded), 9)),
                outcome=ESTIMATED,
                error="attempt ended mid-call; charged at its reserved worst case",
            ),
        )


def set_outcome(session: Session, key: str, outcome: str) -> None:
    session.execute(_SET_OUTCOME, {"entry_key": key, "new_outcome": outcome})


def ensure_spend_totals(session: Session) -> None:
    """Build the running totals of a database written before they existed (once, at startup).

    A store that keeps its totals is left alone: this only runs when there are no totals at all
    but there is spend to count.
    """
    if has_totals(session):
        return
    totals: dict[SpendScope, list[int]] = defaultdict(lambda: [0, 0])
    calls = core_select(*_charged(_ENTRIES, "cost_usd"))
    for run_id, tenant, end_user, cost, at in session.execute(calls):
        for scope in scopes_charged(run_id, tenant, end_user, at):
            totals[scope][0] += to_nanos(cost)
    unsettled = core_select(*_HOLD_CHARGE).where(_RESERVATIONS.c.settled.is_(False))
    for run_id, tenant, end_user, estimate, at in session.execute(unsettled):
        for scope in scopes_charged(run_id, tenant, end_user, at):
            totals[scope][1] += to_nanos(estimate)
    if totals:
        replace_totals(session, {scope: (s, r) for scope, (s, r) in totals.items()})


def _scopes_of(row: LedgerEntry | BudgetReservation) -> list[SpendScope]:
    return scopes_charged(row.run_id, row.tenant, row.end_user, row.created_at)


def entries_for_run(session: Session, run_id: str) -> list[LedgerEntry]:
    return list(
        session.exec(
            select(LedgerEntry).where(LedgerEntry.run_id == run_id).order_by(col(LedgerEntry.id))
        ).all()
    )
