"""A run's state as Temporal knows it, fetched with a short deadline so pages never hang."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from review_ui.context import ReviewDesk
from tether.client import run_status
from tether.core.errors import TetherError

RUN_STATE_DEADLINE_S = 1.5
"""A running workflow answers queries only through a worker; without one, give up quickly."""


class RunSnapshot(BaseModel):
    """What the outcome panel says about the run after a decision."""

    state: str
    """running, awaiting_review, completed, failed, stopped, or unknown."""
    result_status: str | None = None
    detail: str | None = None
    cost_usd: float | None = None


async def run_snapshot(desk: ReviewDesk, run_id: str) -> RunSnapshot:
    """The run's state, or ``unknown`` (with why) when Temporal or a worker does not answer."""
    try:
        client = await desk.temporal.get()
        status: dict[str, Any] = await asyncio.wait_for(
            run_status(desk.settings, run_id, client), RUN_STATE_DEADLINE_S
        )
    except TimeoutError:
        return RunSnapshot(
            state="unknown", detail="no worker answered; the run resumes when one runs"
        )
    except TetherError as exc:
        return RunSnapshot(state="unknown", detail=str(exc))
    except Exception as exc:  # a query can fail in many transport-specific ways
        return RunSnapshot(state="unknown", detail=f"Temporal did not answer: {type(exc).__name__}")
    return RunSnapshot(
        state=str(status.get("state", "unknown")),
        result_status=status.get("result_status"),
        detail=status.get("error"),
        cost_usd=status.get("cost_usd"),
    )
