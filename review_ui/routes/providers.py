"""Provider health: ``GET /api/providers`` (JSON) and the Providers page, both behind login.

Every worker publishes its breakers and call statistics to the store
(``tether.store.provider_health``); these read the merged view.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from review_ui.deps import ApiReviewer, CurrentUser, Desk, SessionDep, read_apart
from review_ui.errors import error_responses
from review_ui.rendering import render
from tether.store.engine import Session
from tether.store.provider_health import ProvidersView, providers_view

router = APIRouter(tags=["providers"])


def _view(session: Session, stale_after_s: float) -> ProvidersView:
    return providers_view(session, stale_after_s=stale_after_s)


@router.get("/api/providers", responses=error_responses(401, 422))
async def providers_api(desk: Desk, session: SessionDep, _: ApiReviewer) -> ProvidersView:
    """Breaker state, recent error rate and latency p50/p95 of every provider/model, per worker
    and combined over the workers that published within ``stale_after_s`` (older rows are
    marked ``stale`` and left out of the combined figures)."""
    return await read_apart(session, _view, desk.policy.provider_health.stale_after_s)


@router.get("/providers", response_class=HTMLResponse, include_in_schema=False)
async def providers_page(
    request: Request, desk: Desk, session: SessionDep, user: CurrentUser
) -> Response:
    view = await read_apart(session, _view, desk.policy.provider_health.stale_after_s)
    return render(desk, request, "providers.html", {"user": user, "view": view})
