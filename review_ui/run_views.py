"""What the runs pages and their JSON twins show: runs with their state, a run's events, the
dashboard's figures. Store reads go through ``tether.store``; a run's end through
``tether.run_feed`` (Temporal), remembered in the store once known."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from pydantic import BaseModel

from policies.effective import step_confidence
from policies.models import ALL_TENANTS, Reviewer, TetherPolicy
from review_ui.access import tenant_filter
from review_ui.context import ReviewDesk
from tether.core.errors import InputError, TetherError
from tether.run_feed import RunEnded, remember_run_end, run_ending
from tether.store.dashboard_panels import recent_budget_alerts, step_calibrations
from tether.store.engine import session_scope
from tether.store.run_figures import DashboardFigures, dashboard_figures
from tether.store.run_list import (
    RunQuery,
    RunRow,
    count_runs,
    find_run,
    list_runs,
    unended_runs,
)

__all__ = [
    "FILTER_STATES",
    "RUN_STATES",
    "RunSummary",
    "dashboard_for",
    "run_summaries",
    "visible_run",
]

log = logging.getLogger(__name__)

RUN_STATES = ("running", "awaiting_review", "completed", "stopped", "failed", "unknown")
FILTER_STATES = RUN_STATES[:-1]
"""The states a list can be filtered by ("unknown" is what Temporal did not answer about)."""
_GONE_AFTER = timedelta(hours=1)
"""A run Temporal does not know this long after it was claimed is remembered as unknown (its
history is past the namespace's retention); a younger one may not have started yet."""
RunListState = Literal["running", "awaiting_review", "completed", "stopped", "failed", "unknown"]
_ENDING_DEADLINE_S = 2.0
_ASK_AT_ONCE = 8
CATCH_UP_RUNS = 200
"""At most this many runs not yet recorded as ended are asked about before a state filter."""
CATCH_UP_WITHIN_S = 5.0
"""How long that catch-up may take in all (a slow Temporal must not hold the page up)."""
PAGE_SIZE = 50


class RunSummary(BaseModel):
    """One row of the runs page (and of ``GET /api/runs``)."""

    run_id: str
    workflow: str
    tenant: str | None
    state: RunListState
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float
    cost_usd: float
    steps: int
    current_step: str | None = None
    decided_by: list[str]


class RunList(BaseModel):
    runs: list[RunSummary]
    total: int
    page: int
    pages: int


def visible_run(database_url: str, run_id: str, caller: Reviewer) -> RunRow | None:
    """The registered run when ``caller`` serves its tenant, else None (answered as 404)."""
    with session_scope(database_url) as session:
        row = find_run(session, run_id)
    if row is None:
        return None
    if row.tenant is None:
        return row if ALL_TENANTS in caller.tenants else None
    return row if caller.sees_tenant(row.tenant) else None


async def run_summaries(
    desk: ReviewDesk,
    caller: Reviewer,
    *,
    workflow: str | None = None,
    tenant: str | None = None,
    state: str | None = None,
    page: int = 1,
) -> RunList:
    """The caller's runs, newest first, filtered and paged in the store; each one's state from
    the store when it is known to have ended, else from Temporal (and remembered when it has).

    Filtering by state first asks Temporal about the runs not yet recorded as ended (the newest
    ``CATCH_UP_RUNS`` of them), so that a run that ended unseen is counted under its end.
    """
    query = RunQuery(
        workflow=workflow or None,
        tenant=tenant or None,
        tenants=tenant_filter(caller),
        state=state or None,
        limit=PAGE_SIZE,
    )
    endings: dict[str, RunEnded | str | None] = {}
    if state:
        unended = await asyncio.to_thread(_unended, desk.database_url, query)
        endings = await _endings(desk, unended, within_s=CATCH_UP_WITHIN_S)
    total, pages, page, rows = await asyncio.to_thread(_page, desk.database_url, query, page)
    unasked = [row for row in rows if row.ended_state is None and row.run_id not in endings]
    endings |= await _endings(desk, unasked)
    now = datetime.now(UTC)
    summaries = [_summary(row, endings.get(row.run_id, "known"), now) for row in rows]
    if state:  # one Temporal did not answer for stays, as "unknown": the total counts it
        summaries = [one for one in summaries if one.state in (state, "unknown")]
    return RunList(runs=summaries, total=total, page=page, pages=pages)


def _unended(database_url: str, query: RunQuery) -> list[RunRow]:
    with session_scope(database_url) as session:
        return unended_runs(session, query, CATCH_UP_RUNS)


def _page(database_url: str, query: RunQuery, page: int) -> tuple[int, int, int, list[RunRow]]:
    """(matching runs, pages, the page shown (within range), its rows)."""
    with session_scope(database_url) as session:
        total = count_runs(session, query)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        query = query.model_copy(update={"offset": (page - 1) * PAGE_SIZE})
        return total, pages, page, list_runs(session, query)


async def _endings(
    desk: ReviewDesk, rows: list[RunRow], within_s: float | None = None
) -> dict[str, RunEnded | str | None]:
    """Temporal's word on each run not known to have ended: a ``RunEnded``, None (running), or
    ``"unknown"`` when Temporal did not answer (in time, when ``within_s`` bounds them all)."""
    if not rows:
        return {}
    try:
        client = await desk.temporal.get()
    except TetherError:
        return {row.run_id: "unknown" for row in rows}
    gate = asyncio.Semaphore(_ASK_AT_ONCE)

    async def ask(row: RunRow) -> RunEnded | str | None:
        async with gate:
            try:
                ended = await asyncio.wait_for(run_ending(client, row.run_id), _ENDING_DEADLINE_S)
            except InputError:  # Temporal knows no such run
                if datetime.now(UTC) - row.started_at < _GONE_AFTER:
                    return "unknown"  # maybe claimed and not started yet
                ended = RunEnded(state="unknown")  # its history is past retention: remembered
            except (TetherError, TimeoutError):
                return "unknown"
            if ended is not None:
                try:
                    await asyncio.to_thread(remember_run_end, desk.database_url, row.run_id, ended)
                except Exception:  # the page still shows it; the next one asks again
                    log.warning("the end of run %s was not remembered", row.run_id, exc_info=True)
            return ended

    asked = {row.run_id: asyncio.ensure_future(ask(row)) for row in rows}
    try:
        _, late = await asyncio.wait(asked.values(), timeout=within_s)
    finally:  # on time, or the request itself cancelled: nothing is left asking
        for task in asked.values():
            task.cancel()
    await asyncio.gather(*asked.values(), return_exceptions=True)
    return {run_id: "unknown" if task in late else task.result() for run_id, task in asked.items()}


def _summary(row: RunRow, ending: RunEnded | str | None, now: datetime) -> RunSummary:
    state: str
    ended_at = row.ended_at
    if row.ended_state is not None:
        state = row.ended_state
    elif isinstance(ending, RunEnded):
        state, ended_at = ending.state, ending.ended_at
    elif ending is None:
        state = "awaiting_review" if row.last_state == "awaiting_review" else "running"
    else:
        state = "unknown"
    return RunSummary(
        run_id=row.run_id,
        workflow=row.workflow,
        tenant=row.tenant,
        state=state if state in RUN_STATES else "unknown",
        started_at=row.started_at,
        ended_at=ended_at,
        duration_s=round(max(0.0, ((ended_at or now) - row.started_at).total_seconds()), 3),
        cost_usd=row.cost_usd,
        steps=row.steps,
        current_step=row.last_step,
        decided_by=row.deciders,
    )


WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
BUCKETS = {"1h": timedelta(minutes=5), "24h": timedelta(hours=1), "7d": timedelta(days=1)}


def dashboard_for(
    database_url: str, caller: Reviewer, window: str, policy: TetherPolicy | None = None
) -> DashboardFigures:
    """The dashboard's figures over ``window`` (``1h``, ``24h`` or ``7d``) for the caller's
    tenants, with their newest budget alerts and, given the ``policy``, each step's
    calibration."""
    span = WINDOWS.get(window, WINDOWS["24h"])
    bucket = BUCKETS.get(window, BUCKETS["24h"])
    now = datetime.now(UTC)
    since = now - span
    tenants = tenant_filter(caller)
    with session_scope(database_url) as session:
        figures = dashboard_figures(session, tenants, since=since, bucket=bucket, now=now)
        figures.budget_alerts = recent_budget_alerts(session, tenants)
        if policy is not None:
            figures.calibration = step_calibrations(session, tenants, partial(_step_eval, policy))
    return figures


def _step_eval(policy: TetherPolicy, workflow: str, step: str) -> tuple[float, float, float]:
    own = policy.eval.for_step(workflow, step)
    accept = step_confidence(policy, workflow, step).thresholds.accept
    return accept, own.target_precision, own.audit_sample_rate
