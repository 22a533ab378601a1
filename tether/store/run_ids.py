"""The run registry: every run id ever started, claimed before its run starts.

Ledger, reservation and review keys are derived from the run id, so an id used twice would let
a second run's calls land on the first run's keys (uncharged, or onto a decided review).
Temporal rejects a duplicate id only while it still remembers the first run (its retention);
this table remembers for ever, and its primary key makes a claim succeed once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Index, delete, exists, select
from sqlmodel import Field, Session, SQLModel, col

from tether.store.ledger import BudgetReservation, LedgerEntry, insert_once


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunIdClaim(SQLModel, table=True):
    """A run id, claimed once, for ever."""

    __tablename__ = "run_ids"
    # The runs list reads newest first, whole or for one tenant.
    __table_args__ = (
        Index("ix_run_ids_claimed_at", "claimed_at"),
        Index("ix_run_ids_tenant_claimed_at", "tenant", "claimed_at"),
    )

    run_id: str = Field(primary_key=True, max_length=200)
    workflow: str = Field(max_length=100)
    tenant: str | None = Field(default=None, max_length=100)
    """Whose run it is: a login of another tenant is told the run does not exist."""
    claimed_at: datetime = Field(default_factory=utcnow)
    ended_state: str | None = Field(default=None, max_length=20)
    """How the run ended (completed, stopped, failed), once Temporal has said; None before."""
    ended_at: datetime | None = None


def claim_run_id(session: Session, run_id: str, workflow: str, tenant: str | None = None) -> bool:
    """Claim ``run_id`` for a new run of ``workflow``. False when it was ever claimed, or when
    the ledger already counts a run by that id (one started before this registry existed)."""
    for column in (col(LedgerEntry.run_id), col(BudgetReservation.run_id)):
        if session.execute(select(exists().where(column == run_id))).scalar_one():
            return False
    return insert_once(session, RunIdClaim(run_id=run_id, workflow=workflow, tenant=tenant))


def run_tenant(session: Session, run_id: str) -> tuple[bool, str | None]:
    """Whether ``run_id`` is registered, and the tenant it was started for (None: not named, or
    a run started before the registry recorded tenants)."""
    claim = session.get(RunIdClaim, run_id)
    return (claim is not None, claim.tenant if claim is not None else None)


def release_run_id(session: Session, run_id: str) -> None:
    """Give back a claim whose run never started (the Temporal server refused the start for
    another reason than the id)."""
    session.execute(delete(RunIdClaim).where(col(RunIdClaim.run_id) == run_id))
