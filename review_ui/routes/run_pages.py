"""The runs pages: ``/runs`` (filterable list), ``/runs/{id}`` (a run's timeline, live through
server-sent events) and ``/dashboard`` (server-rendered SVG charts)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from policies.models import ALL_TENANTS
from review_ui.charts import (
    Marker,
    Series,
    bar_chart,
    grouped_bars,
    line_chart,
    precision_chart,
)
from review_ui.context import ReviewDesk
from review_ui.deps import CurrentUser, Desk
from review_ui.rendering import render
from review_ui.run_views import FILTER_STATES, WINDOWS, dashboard_for, run_summaries, visible_run
from tether.run_feed import read_events
from tether.store.dashboard_panels import StepCalibration
from tether.store.run_figures import CONFIDENCE_BINS, DashboardFigures

router = APIRouter(include_in_schema=False)


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(
    request: Request,
    desk: Desk,
    user: CurrentUser,
    workflow: str | None = None,
    status: str | None = None,
    tenant: str | None = None,
    page: int = Query(default=1, ge=1, le=100_000),
) -> Response:
    from workflows.catalog import CATALOG

    state = status if status in FILTER_STATES else None
    runs = await run_summaries(
        desk, user.reviewer, workflow=workflow, tenant=tenant, state=state, page=page
    )
    tenants = sorted(t for t in user.reviewer.tenants if t != ALL_TENANTS)
    filters = {"workflow": workflow or "", "status": state or "", "tenant": tenant or ""}
    context = {
        "user": user,
        "runs": runs,
        "filters": filters,
        "workflows": sorted(CATALOG),
        "states": FILTER_STATES,
        "tenants": tenants,
        "all_tenants": ALL_TENANTS in user.reviewer.tenants,
        "page_link": lambda n: "/runs?" + urlencode({**filters, "page": n}),
    }
    return render(desk, request, "runs.html", context)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, desk: Desk, user: CurrentUser, run_id: str) -> Response:
    row = await asyncio.to_thread(visible_run, desk.database_url, run_id, user.reviewer)
    if row is None:
        raise HTTPException(404, f"no run {run_id}")
    events = await asyncio.to_thread(read_events, desk.database_url, run_id, 0)
    context = {
        "user": user,
        "run": row,
        "events": events,
        "last_seq": events[-1].seq if events else 0,
        "stream_url": f"/api/runs/{run_id}/events",
    }
    return render(desk, request, "run.html", context)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(
    request: Request, desk: Desk, user: CurrentUser, window: str = "24h"
) -> Response:
    window = window if window in WINDOWS else "24h"
    figures = await asyncio.to_thread(
        dashboard_for, desk.database_url, user.reviewer, window, desk.policy
    )
    context = {
        "user": user,
        "figures": figures,
        "window": window,
        "windows": list(WINDOWS),
        "charts": _charts(desk, figures, window),
        "calibration_charts": [_calibration_chart(one) for one in figures.calibration],
    }
    return render(desk, request, "dashboard.html", context)


def _charts(desk: ReviewDesk, figures: DashboardFigures, window: str) -> dict[str, Markup]:
    labels = [_label(bucket.start, window) for bucket in figures.cost_usd]
    steps = [f"{one.workflow}.{one.step}" for one in figures.step_latency]
    latency = [one.latency_ms for one in figures.step_latency]
    thresholds = desk.policy.confidence.thresholds
    wait = figures.time_to_decision_s
    width = 1 / CONFIDENCE_BINS
    bands = [f"{i * width:.2f}" for i in range(CONFIDENCE_BINS)]
    return {
        "cost": line_chart(
            "Cost over time (USD)",
            labels,
            [Series("cost", [b.value for b in figures.cost_usd])],
            unit=" $",
        ),
        "latency": grouped_bars(
            "Step latency (ms)",
            steps,
            [
                Series("p50", [p.p50 for p in latency]),
                Series("p95", [p.p95 for p in latency]),
                Series("p99", [p.p99 for p in latency]),
            ],
        ),
        "review": line_chart(
            "Review rate and queue depth",
            labels,
            [
                Series("review rate", [b.value for b in figures.review_rate]),
                Series("queue depth", [b.value for b in figures.queue_depth]),
            ],
        ),
        "decision": bar_chart(
            "Time to decision (s)",
            ["p50", "p95", "p99"],
            [wait.p50, wait.p95, wait.p99],
            unit=" s",
        ),
        "confidence": bar_chart(
            "Confidence of settled steps",
            bands,
            [float(n) for n in figures.confidence_bins],
            markers=[
                Marker(thresholds.accept, f"accept {thresholds.accept:g}", "#059669"),
                Marker(thresholds.review, f"review {thresholds.review:g}", "#d97706"),
                Marker(thresholds.escalate, f"escalate {thresholds.escalate:g}", "#dc2626"),
            ],
        ),
    }


def _calibration_chart(one: StepCalibration) -> Markup:
    markers = [Marker(one.accept_threshold, f"accept {one.accept_threshold:g}", "#059669")]
    if one.suggested_threshold is not None:
        markers.append(
            Marker(one.suggested_threshold, f"suggested {one.suggested_threshold:g}", "#7c3aed")
        )
    return precision_chart(
        f"Precision of auto-accept by threshold: {one.workflow}.{one.step}",
        [(row.threshold, row.precision) for row in one.thresholds],
        target=one.target_precision,
        markers=markers,
    )


def _label(at: datetime, window: str) -> str:
    return at.strftime("%m-%d" if window == "7d" else "%H:%M")
