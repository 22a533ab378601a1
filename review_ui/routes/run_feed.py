"""``GET /api/runs`` (the runs list), ``GET /api/runs/{id}/events`` (a run's step events as
server-sent events, live) and ``GET /api/dashboard`` (the dashboard's figures)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from review_ui.deps import ApiReviewer, Desk
from review_ui.errors import error_responses
from review_ui.run_views import FILTER_STATES, RunList, dashboard_for, run_summaries, visible_run
from tether.core.errors import InputError, ServerUnreachableError
from tether.run_feed import RunEnded, follow_run
from tether.store.run_figures import DashboardFigures
from tether.store.step_events import StepEvent

router = APIRouter(tags=["runs"], responses=error_responses(401, 422))

HEARTBEAT_S = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""
RETRY_MS = 2000
"""How long a browser waits before reconnecting a dropped stream (it resumes by its
``Last-Event-ID``)."""
STREAM_LIFETIME_S = 600.0
"""A stream ends after this long, cleanly (between events): the browser's EventSource reconnects
after ``RETRY_MS`` with its ``Last-Event-ID`` and resumes with the next event. A run waiting days
for a review so holds no connection, nor a poll loop, longer than this per tab; a tab closed
without a goodbye frees its slot at the latest then."""
MAX_STREAMS_PER_REVIEWER = 20
"""Open streams one login may hold (a tab each); one more is answered 429."""
MAX_STREAMS = 500
"""Open streams of this process, all logins together (each polls the store); then 429."""


class _StreamSlots:
    """Open streams per login and in all, counted in this process (its event loop)."""

    def __init__(self) -> None:
        self.by_reviewer: dict[str, int] = {}

    def take(self, reviewer: str) -> Callable[[], None]:
        """A slot for one stream, and the call that frees it (once, however often called).

        Raises:
            HTTPException: 429 when the login or the process holds its most streams.
        """
        if self.by_reviewer.get(reviewer, 0) >= MAX_STREAMS_PER_REVIEWER:
            raise HTTPException(
                429,
                f"{MAX_STREAMS_PER_REVIEWER} live run streams open for this login: close a tab",
                headers={"Retry-After": "30"},
            )
        if sum(self.by_reviewer.values()) >= MAX_STREAMS:
            raise HTTPException(
                429, "too many live run streams open: try again later", {"Retry-After": "30"}
            )
        self.by_reviewer[reviewer] = self.by_reviewer.get(reviewer, 0) + 1
        freed = False

        def free() -> None:
            nonlocal freed
            if not freed:
                freed = True
                left = self.by_reviewer.pop(reviewer, 1) - 1
                if left:
                    self.by_reviewer[reviewer] = left

        return free


STREAM_SLOTS = _StreamSlots()


@router.get("/api/runs", response_model=RunList)
async def list_runs(
    desk: Desk,
    reviewer: ApiReviewer,
    workflow: str | None = None,
    status: str | None = Query(default=None, description=f"One of {', '.join(FILTER_STATES)}."),
    tenant: str | None = None,
    page: int = Query(default=1, ge=1, le=100_000),
) -> RunList:
    """Runs of the caller's tenants, newest first: state, cost, duration, steps, who decided."""
    if status and status not in FILTER_STATES:
        raise HTTPException(422, f"status: one of {', '.join(FILTER_STATES)}")
    return await run_summaries(
        desk, reviewer, workflow=workflow, tenant=tenant, state=status, page=page
    )


@router.get("/api/dashboard", response_model=DashboardFigures)
async def dashboard(
    desk: Desk,
    reviewer: ApiReviewer,
    window: str = Query(default="24h", pattern="^(1h|24h|7d)$"),
) -> DashboardFigures:
    """Cost over time, step latency percentiles, review rate, queue depth, time to decision and
    the confidence histogram, for the caller's tenants."""
    return await asyncio.to_thread(dashboard_for, desk.database_url, reviewer, window, desk.policy)


@router.get(
    "/api/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `step` events (id = the event's seq, data = a "
            "StepEvent as JSON) in order, `: heartbeat` comments, then one `end` event (or a `problem` event when the run cannot be read).",
        },
        **error_responses(404, 429, 503),
    },
)
async def run_events(
    run_id: str,
    desk: Desk,
    reviewer: ApiReviewer,
    after: int = Query(default=0, ge=0, description="Send the events after this seq."),
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """The run's step events as they happen, resumable by ``Last-Event-ID`` (or ``after``);
    the stream ends with an ``end`` event when the run has ended, or without one after
    ``STREAM_LIFETIME_S`` (reconnect with ``Last-Event-ID`` to go on). A login holds at most
    ``MAX_STREAMS_PER_REVIEWER`` streams at once (429 beyond). A run of a tenant the caller
    does not serve is answered as one that does not exist."""
    row = await asyncio.to_thread(visible_run, desk.database_url, run_id, reviewer)
    if row is None:
        raise HTTPException(404, f"no run {run_id!r}")
    try:
        client = await desk.temporal.get()
    except ServerUnreachableError as exc:
        raise HTTPException(503, str(exc)) from None
    start = max(after, _seq(last_event_id))
    free = STREAM_SLOTS.take(reviewer.name)
    feed = follow_run(client, desk.database_url, run_id, after_seq=start)
    return StreamingResponse(
        _sse(feed, free),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(free),  # also when the body never started
    )


async def _sse(
    feed: AsyncIterator[StepEvent | RunEnded], free: Callable[[], None]
) -> AsyncIterator[str]:
    """The feed as SSE lines, with a heartbeat comment whenever it is quiet for a while, for at
    most ``STREAM_LIFETIME_S`` (then it ends between two events; the browser resumes)."""
    loop = asyncio.get_running_loop()
    closes_at = loop.time() + STREAM_LIFETIME_S
    queue: asyncio.Queue[StepEvent | RunEnded | Exception] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in feed:
                await queue.put(item)
        except Exception as exc:  # delivered to the client as an error event
            await queue.put(exc)

    task = asyncio.create_task(pump())
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while (left := closes_at - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(queue.get(), min(HEARTBEAT_S, left))
            except TimeoutError:
                if closes_at - loop.time() > 0:
                    yield ": heartbeat\n\n"
                continue
            if isinstance(item, StepEvent):
                yield f"id: {item.seq}\nevent: step\ndata: {item.model_dump_json()}\n\n"
            elif isinstance(item, RunEnded):
                yield f"event: end\ndata: {item.model_dump_json()}\n\n"
                return
            else:
                message = str(item) if isinstance(item, InputError) else "the run cannot be read"
                yield f"event: problem\ndata: {json.dumps({'detail': message})}\n\n"
                return
    finally:
        free()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _seq(last_event_id: str | None) -> int:
    try:
        return max(0, int(last_event_id or 0))
    except ValueError:
        return 0
