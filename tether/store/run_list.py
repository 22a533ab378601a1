"""The runs list: registered runs with their cost, steps, newest state and who decided.

Joins the run registry (``run_ids``: who started what, for which tenant, and how it ended once
known) with the cost ledger and the step events. A run's end is known to Temporal; the web
layer writes it here (``record_run_end``) the first time Temporal reports it, so listing runs
asks Temporal only about runs that may still be going.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import Session, col

from tether.store.ledger import LedgerEntry
from tether.store.run_ids import RunIdClaim
from tether.store.step_events import StepEventRow

__all__ = [
    "RunQuery",
    "RunRow",
    "count_runs",
    "find_run",
    "list_runs",
    "record_run_end",
    "unended_runs",
]

ENDED_STATES = ("completed", "stopped", "failed")


class RunQuery(BaseModel):
    workflow: str | None = None
    tenant: str | None = None
    """One tenant to show (within ``tenants``)."""
    tenants: tuple[str, ...] | None = None
    """The tenants the caller sees; None for every tenant (runs without one included)."""
    state: str | None = None
    """An ended state (``completed``, ``stopped``, ``failed``: as recorded), or a state of a
    run not recorded as ended: ``awaiting_review`` (its newest step event is a review
    opening), ``running`` or ``unknown`` (any other)."""
    offset: int = 0
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
    """Runs matching ``query``, newest first, ``query.limit`` from ``query.offset``."""
    select_runs = (
        select(RunIdClaim)
        .where(*_matching(query))
        .order_by(col(RunIdClaim.claimed_at).desc(), col(RunIdClaim.run_id))
        .offset(query.offset)
        .limit(query.limit)
    )
    claims = list(session.execute(select_runs).scalars())
    return _with_figures(session, claims)


def count_runs(session: Session, query: RunQuery) -> int:
    """How many runs match ``query`` (its offset and limit aside)."""
    counted = select(func.count()).select_from(RunIdClaim).where(*_matching(query))
    return int(session.execute(counted).scalar_one())


def unended_runs(session: Session, query: RunQuery, limit: int) -> list[RunRow]:
    """Up to ``limit`` of the newest runs matching ``query`` (its state aside) that are not
    recorded as ended: running, or ended without anyone having asked Temporal since."""
    unended = query.model_copy(update={"state": None})
    select_runs = (
        select(RunIdClaim)
        .where(*_matching(unended), col(RunIdClaim.ended_state).is_(None))
        .order_by(col(RunIdClaim.claimed_at).desc(), col(RunIdClaim.run_id))
        .limit(limit)
    )
    return _with_figures(session, list(session.execute(select_runs).scalars()))


def _matching(query: RunQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.workflow:
        where.append(col(RunIdClaim.workflow) == query.workflow)
    if query.tenant:
        where.append(col(RunIdClaim.tenant) == query.tenant)
    if query.tenants is not None:
        where.append(col(RunIdClaim.tenant).in_(query.tenants))
    if query.state in ENDED_STATES:
        where.append(col(RunIdClaim.ended_state) == query.state)
    elif query.state is not None:
        where.append(col(RunIdClaim.ended_state).is_(None))
        newest = (
            select(col(StepEventRow.state))
            .where(col(StepEventRow.run_id) == col(RunIdClaim.run_id))
            .order_by(col(StepEventRow.seq).desc())
            .limit(1)
            .scalar_subquery()
        )
        if query.state == "awaiting_review":
            where.append(newest == "awaiting_review")
        else:
            where.append(or_(newest.is_(None), newest != "awaiting_review"))
    return where


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
