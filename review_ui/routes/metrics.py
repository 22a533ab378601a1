"""``/metrics``: Tether's Prometheus metrics, every process's on this host when
``PROMETHEUS_MULTIPROC_DIR`` is shared (see ``tether.core.metrics``), plus the review queue's
depth read from the store at scrape time.

With ``TETHER_METRICS_TOKEN`` set, Prometheus must send it as a bearer token
(``authorization.credentials_file`` in its scrape config). Without one, only ``TETHER_ENV=dev``
serves it: in production the figures (tenants, spend per tenant) are refused rather than open to
whoever reaches the port.
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from review_ui.deps import Desk
from tether.core.metrics import CONTENT_TYPE, QueueDepthCollector, render_metrics
from tether.store.engine import session_scope
from tether.store.reviews import count_pending_reviews

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(desk: Desk, request: Request) -> Response:
    token = desk.settings.metrics_token
    if token is None and desk.settings.env != "dev":
        raise HTTPException(403, "metrics are off: set TETHER_METRICS_TOKEN to serve them")
    if token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise HTTPException(
                401, "metrics need the bearer token", {"WWW-Authenticate": "Bearer"}
            )

    def count_pending() -> int:
        with session_scope(desk.database_url) as session:
            return count_pending_reviews(session)

    body = await asyncio.to_thread(render_metrics, QueueDepthCollector(count_pending))
    return Response(body, media_type=CONTENT_TYPE)
