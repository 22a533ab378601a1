"""The cost ledger: one row per provider call, and budget reservations made by checkpoints.

Rows carry idempotency keys with unique constraints because an activity can run more than once;
writing the same key twice is a no-op, so a retried activity never counts a call twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select


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


@dataclass(frozen=True)
class SpendScope:
    """Which ledger rows and reservations a budget counts; ``None`` fields do not filter."""

    run_id: str | None = None
    tenant: str | None = None
    end_user: str | None = None
    since: datetime | None = None


_SCOPE_FILTERS: dict[str, Callable[[Any, Any], Any]] = {
    "run_id": lambda table, value: col(table.run_id) == value,
    "tenant": lambda table, value: col(table.tenant) == value,
    "end_user": lambda table, value: col(table.end_user) == value,
    "since": lambda table, value: col(table.created_at) >= value,
}


def spend_by_scope(session: Session, scopes: Sequence[SpendScope]) -> list[tuple[float, float]]:
    """(spent, still reserved) for each scope, all read by one SELECT."""
    shapes = tuple(
        tuple(name for name in _SCOPE_FILTERS if getattr(scope, name) is not None)
        for scope in scopes
    )
    params = {
        f"{name}_{index}": getattr(scope, name)
        for index, (scope, shape) in enumerate(zip(scopes, shapes, strict=True))
        for name in shape
    }
    row = session.execute(_spend_statement(shapes), params).one()
    return [(float(row[i]), float(row[i + 1])) for i in range(0, len(row), 2)]


@lru_cache(maxsize=32)
def _spend_statement(shapes: tuple[tuple[str, ...], ...]) -> Any:
    columns = []
    for index, shape in enumerate(shapes):
        for table, amount in (
            (LedgerEntry, LedgerEntry.cost_usd),
            (BudgetReservation, BudgetReservation.estimate_usd),
        ):
            where = [_SCOPE_FILTERS[name](table, bindparam(f"{name}_{index}")) for name in shape]
            if table is BudgetReservation:
                where.append(col(BudgetReservation.settled).is_(False))
            total = select(func.coalesce(func.sum(amount), 0.0)).where(*where)
            columns.append(total.scalar_subquery())
    return select(*columns)


def run_spend(session: Session, run_id: str) -> tuple[float, float]:
    """(spent, still reserved) for one run."""
    return spend_by_scope(session, [SpendScope(run_id=run_id)])[0]


_SETTLE = (
    update(BudgetReservation)
    .where(col(BudgetReservation.key) == bindparam("hold_key"))
    .where(col(BudgetReservation.settled).is_(False))
    .values(settled=True)
)
_SET_OUTCOME = (
    update(LedgerEntry)
    .where(col(LedgerEntry.key) == bindparam("entry_key"))
    .values(outcome=bindparam("new_outcome"))
)


def settle_reservation(session: Session, key: str) -> None:
    session.execute(_SETTLE, {"hold_key": key})


def set_outcome(session: Session, key: str, outcome: str) -> None:
    session.execute(_SET_OUTCOME, {"entry_key": key, "new_outcome": outcome})


def entries_for_run(session: Session, run_id: str) -> list[LedgerEntry]:
    return list(
        session.exec(
            select(LedgerEntry).where(LedgerEntry.run_id == run_id).order_by(col(LedgerEntry.id))
        ).all()
    )
