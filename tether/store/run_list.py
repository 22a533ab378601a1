"""The runs list: registered runs with their cost, steps, newest state and who decided.

Joins the run registry (``run_ids``: who started what, for which tenant, and how it ended once
known) with the cost ledger and the step events. A run's end is known to Temporal; the web
layer writes it here (``record_run_end``) the first time Temporal reports it, so listing runs
asks Temporal only about runs that may still be going.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlmodel import Session, col

from tether.store.ledger import LedgerEntry
from tether.store.run_ids import RunIdClaim
from tether.store.step_events import StepEventRow

__all__ = ["RunQuery", "RunRow", "find_run", "list_runs", "record_run_end"]

ENDED_STATES = ("completed", "stopped", "failed")


class RunQuery(BaseModel):
    workflow: str | None = None
    tenant: str | None = None
    """One tenant to show (within ``tenants``)."""
    tenants: tuple[str, ...] | None = None
    """The tenants the caller sees; None for every tenant (runs without one included)."""
    limit: int = 500


class RunRow(BaseModel):
    run_id: str
    workflow: str
    tenant: str | None
    started_at: datetime
    ended_state: str | None = None
    ended_at: datetime | None = None
    cost_usd: float = 0.0
    steps: int = 0
    """How many distinct steps have an event."""
    last_state: str | None = None
    """The newest step event's state (``awaiting_review`` while a review is open)."""
    last_step: str | None = None
    deciders: list[str] = []


def list_runs(session: Session, query: RunQuery) -> list[RunRow]:
    """Runs matching ``query``, newest first."""
    select_runs = select(RunIdClaim).order_by(col(RunIdClaim.claimed_at).desc()).limit(query.limit)
    if query.workflow:
        select_runs = select_runs.where(col(RunIdClaim.workflow) == query.workflow)
    if query.tenant:
        select_runs = select_runs.where(col(RunIdClaim.tenant) == query.tenant)
    if query.tenants is not None:
        select_runs = select_runs.where(col(RunIdClaim.tenant).in_(query.tenants))
    claims = list(session.execute(select_runs).scalars())
    return _with_figures(session, claims)


def find_run(session: Session, run_id: str) -> RunRow | None:
    """One registered run with its figures, or None."""
    claim = session.get(RunIdClaim, run_id)
    return _with_figures(session, [claim])[0] if claim is not None else None


def record_run_end(session: Session, run_id: str, state: str, ended_at: datetime | None) -> None:
    """Remember how ``run_id`` ended (``completed``, ``stopped`` or ``failed``)."""
    claim = session.get(RunIdClaim, run_id)
    if claim is not None and claim.ended_state is None:
        claim.ended_state, claim.ended_at = state, ended_at
        session.add(claim)


def _with_figures(session: Session, claims: list[RunIdClaim]) -> list[RunRow]:
    ids = [claim.run_id for claim in claims]
    if not ids:
        return []
    costs = dict(
        session.execute(
            select(col(LedgerEntry.run_id), func.sum(col(LedgerEntry.cost_usd)))
            .where(col(LedgerEntry.run_id).in_(ids))
            .group_by(col(LedgerEntry.run_id))
        ).all()
    )
    steps = dict(
        session.execute(
            select(col(StepEventRow.run_id), func.count(func.distinct(col(StepEventRow.step))))
            .where(col(StepEventRow.run_id).in_(ids))
            .group_by(col(StepEventRow.run_id))
        ).all()
    )
    newest = (
        select(col(StepEventRow.run_id), func.max(col(StepEventRow.seq)).label("seq"))
        .where(col(StepEventRow.run_id).in_(ids))
        .group_by(col(StepEventRow.run_id))
        .subquery()
    )
    last = {
        run_id: (state, step)
        for run_id, state, step in session.execute(
            select(col(StepEventRow.run_id), col(StepEventRow.state), col(StepEventRow.step)).join(
                newest,
                (col(StepEventRow.run_id) == newest.c.run_id)
                & (col(StepEventRow.seq) == newest.c.seq),
            )
        ).all()
    }
    deciders: dict[str, list[str]] = {}
    for run_id, actor in session.execute(
        select(col(StepEventRow.run_id), col(StepEventRow.actor))
        .where(col(StepEventRow.run_id).in_(ids), col(StepEventRow.actor).is_not(None))
        .order_by(col(StepEventRow.seq))
    ).all():
        names = deciders.setdefault(run_id, [])
        if actor not in names:
            names.append(actor)
    return [
        RunRow(
            run_id=claim.run_id,
            workflow=claim.workflow,
            tenant=claim.tenant,
            started_at=_aware(claim.claimed_at),
            ended_state=claim.ended_state,
            ended_at=_aware(claim.ended_at) if claim.ended_at else None,
            cost_usd=round(float(costs.get(claim.run_id) or 0.0), 8),
            steps=int(steps.get(claim.run_id) or 0),
            last_state=last.get(claim.run_id, (None, None))[0],
            last_step=last.get(claim.run_id, (None, None))[1],
            deciders=deciders.get(claim.run_id, []),
        )
        for claim in claims
    ]


def _aware(at: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every time stored is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
