"""``/healthz``: the liveness probe."""

from __future__ import annotations

from fastapi import APIRouter

from review_ui.deps import Desk, SessionDep
from tether.store.engine import ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(desk: Desk, session: SessionDep) -> dict[str, str]:
    """Liveness: the app answers and its store is readable."""
    ping(session)
    connected = desk.temporal.client is not None
    return {"status": "ok", "store": "ok", "temporal": "connected" if connected else "lazy"}
