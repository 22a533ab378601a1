"""The cost ledger: one row per provider call, and budget reservations made by checkpoints.

Rows carry idempotency keys with unique constraints because an activity can run more than once;
writing the same key twice is a no-op, so a retried activity never counts a call twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
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


def insert_once(session: Session, row: SQLModel) -> bool:
    """Insert ``row`` unless a row with its unique key exists. Returns True when inserted."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def run_spend(session: Session, run_id: str) -> tuple[float, float]:
    """(spent, still reserved) for one run."""
    spent = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.cost_usd), 0.0)).where(
            LedgerEntry.run_id == run_id
        )
    ).one()
    reserved = session.exec(
        select(func.coalesce(func.sum(BudgetReservation.estimate_usd), 0.0)).where(
            BudgetReservation.run_id == run_id, col(BudgetReservation.settled).is_(False)
        )
    ).one()
    return float(spent), float(reserved)


def scope_spend(
    session: Session, *, since: datetime, tenant: str, end_user: str | None = None
) -> tuple[float, float]:
    """(spent, still reserved) since ``since`` for a tenant, or for one end user when given."""
    entry_filter: list[ColumnElement[bool]] = [
        col(LedgerEntry.created_at) >= since,
        col(LedgerEntry.tenant) == tenant,
    ]
    hold_filter: list[ColumnElement[bool]] = [
        col(BudgetReservation.created_at) >= since,
        col(BudgetReservation.tenant) == tenant,
        col(BudgetReservation.settled).is_(False),
    ]
    if end_user is not None:
        entry_filter.append(col(LedgerEntry.end_user) == end_user)
        hold_filter.append(col(BudgetReservation.end_user) == end_user)
    spent = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.cost_usd), 0.0)).where(*entry_filter)
    ).one()
    reserved = session.exec(
        select(func.coalesce(func.sum(BudgetReservation.estimate_usd), 0.0)).where(*hold_filter)
    ).one()
    return float(spent), float(reserved)


def settle_reservation(session: Session, key: str) -> None:
    hold = session.exec(select(BudgetReservation).where(BudgetReservation.key == key)).first()
    if hold is not None and not hold.settled:
        hold.settled = True
        session.add(hold)


def set_outcome(session: Session, key: str, outcome: str) -> None:
    row = session.exec(select(LedgerEntry).where(LedgerEntry.key == key)).first()
    if row is not None:
        row.outcome = outcome
        session.add(row)


def entries_for_run(session: Session, run_id: str) -> list[LedgerEntry]:
    return list(
        session.exec(
            select(LedgerEntry).where(LedgerEntry.run_id == run_id).order_by(col(LedgerEntry.id))
        ).all()
    )
