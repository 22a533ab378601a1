"""Running spend totals per budget scope: a run, a tenant's month, an end user's day (UTC).

A checkpoint reads its scopes by primary key instead of summing the ledger, so its cost stays
the same however many calls a tenant has made this month. Totals change only in the transaction
that writes the ledger row or reservation they count (see ``tether.store.ledger``), and an
increment is one atomic ``INSERT ... ON CONFLICT DO UPDATE``, so concurrent workers never lose
one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, select


class SpendTotal(SQLModel, table=True):
    """What one budget scope has spent and still holds in reservations."""

    __tablename__ = "spend_totals"

    scope: str = Field(primary_key=True, max_length=600)
    # Whole nano-dollars: integer sums are exact, so a total that is reserved and released
    # lands back on zero, and no order of increments changes it.
    spent_nanos: int = Field(default=0, sa_type=BigInteger)
    reserved_nanos: int = Field(default=0, sa_type=BigInteger)


NANOS_PER_USD = 1_000_000_000


def to_nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


@dataclass(frozen=True)
class SpendScope:
    """One budget scope; build it with ``run``, ``tenant_month`` or ``user_day``."""

    key: str

    @classmethod
    def run(cls, run_id: str) -> SpendScope:
        return cls._of("run", run_id)

    @classmethod
    def tenant_month(cls, tenant: str, at: datetime) -> SpendScope:
        return cls._of("tenant_month", tenant, _utc(at).strftime("%Y-%m"))

    @classmethod
    def user_day(cls, tenant: str, end_user: str, at: datetime) -> SpendScope:
        return cls._of("user_day", tenant, end_user, _utc(at).strftime("%Y-%m-%d"))

    @classmethod
    def _of(cls, *parts: str) -> SpendScope:
        # JSON keeps the parts apart whatever characters tenant or user names hold; unescaped,
        # so a key stays within the column for the longest names the ledger accepts.
        return cls(json.dumps(parts, separators=(",", ":"), ensure_ascii=False))


def scopes_charged(
    run_id: str, tenant: str, end_user: str | None, at: datetime
) -> list[SpendScope]:
    """Every scope a cost made at ``at`` counts against."""
    scopes = [SpendScope.run(run_id), SpendScope.tenant_month(tenant, at)]
    if end_user:
        scopes.append(SpendScope.user_day(tenant, end_user, at))
    return scopes


def add_to_totals(
    session: Session, scopes: Iterable[SpendScope], *, spent: float = 0.0, reserved: float = 0.0
) -> None:
    """Add ``spent`` and ``reserved`` (either may be negative) to each scope's total."""
    rows = [
        {"scope": scope.key, "spent_nanos": to_nanos(spent), "reserved_nanos": to_nanos(reserved)}
        for scope in scopes
    ]
    if rows:
        session.execute(_add_statement(session.get_bind().dialect.name), rows)


@lru_cache(maxsize=4)
def _add_statement(dialect: str) -> Any:
    insert: Any = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[dialect]
    table = SpendTotal.__table__  # type: ignore[attr-defined]
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.scope],
        set_={
            "spent_nanos": table.c.spent_nanos + statement.excluded.spent_nanos,
            "reserved_nanos": table.c.reserved_nanos + statement.excluded.reserved_nanos,
        },
    )


# Hot statements name the table, not the ORM class: the session then runs them as plain Core
# statements, without the ORM's compile and bulk-persistence layers.
_TOTALS = SpendTotal.__table__  # type: ignore[attr-defined]
_READ = select(_TOTALS.c.scope, _TOTALS.c.spent_nanos, _TOTALS.c.reserved_nanos).where(
    _TOTALS.c.scope.in_(bindparam("scopes", expanding=True))
)


def spend_by_scope(session: Session, scopes: Sequence[SpendScope]) -> list[tuple[float, float]]:
    """(spent, still reserved) for each scope, in order, all read by one SELECT."""
    found = {
        scope: (spent, reserved)
        for scope, spent, reserved in session.execute(
            _READ, {"scopes": [scope.key for scope in scopes]}
        )
    }
    return [
        (spent / NANOS_PER_USD, reserved / NANOS_PER_USD)
        for spent, reserved in (found.get(scope.key, (0, 0)) for scope in scopes)
    ]


def lock_scopes(session: Session, scopes: Sequence[SpendScope]) -> list[tuple[float, float]]:
    """(spent, still reserved) for each scope, in order, with every scope's row locked until the
    transaction ends: a check made on these figures and the hold it adds are one atomic step.

    The rows are created when missing, then locked in one fixed order (by scope key) so two
    checkpoints sharing scopes never deadlock. PostgreSQL locks the rows (``FOR UPDATE``);
    SQLite's insert takes its single write lock for the rest of the transaction.
    """
    ordered = sorted({scope.key for scope in scopes})
    dialect = session.get_bind().dialect.name
    session.execute(
        _ensure_statement(dialect),
        [{"scope": key, "spent_nanos": 0, "reserved_nanos": 0} for key in ordered],
    )
    found = {
        scope: (spent, reserved)
        for scope, spent, reserved in session.execute(_LOCK, {"scopes": ordered})
    }
    return [
        (spent / NANOS_PER_USD, reserved / NANOS_PER_USD)
        for spent, reserved in (found.get(scope.key, (0, 0)) for scope in scopes)
    ]


@lru_cache(maxsize=4)
def _ensure_statement(dialect: str) -> Any:
    insert: Any = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}[dialect]
    return insert(SpendTotal.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]


_LOCK = _READ.order_by(_TOTALS.c.scope).with_for_update()


def replace_totals(session: Session, totals: Mapping[SpendScope, tuple[int, int]]) -> None:
    """Replace every total with ``totals``: scope -> (spent, reserved) in nano-dollars."""
    session.execute(SpendTotal.__table__.delete())  # type: ignore[attr-defined]
    rows = [
        {"scope": scope.key, "spent_nanos": spent, "reserved_nanos": reserved}
        for scope, (spent, reserved) in totals.items()
    ]
    if rows:
        session.execute(SpendTotal.__table__.insert(), rows)  # type: ignore[attr-defined]


def has_totals(session: Session) -> bool:
    return session.execute(select(SpendTotal.scope).limit(1)).first() is not None


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
