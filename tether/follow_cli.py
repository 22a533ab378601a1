"""``tether status RUN_ID --follow`` and the progress line of ``tether run --wait``: a run's
steps as they happen, read through ``tether.run_feed``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from typing import Any, TextIO, TypeVar

from temporalio.client import Client

from tether.client import connect
from tether.core.progress import ProgressLine
from tether.core.settings import Settings
from tether.run_feed import RunEnded, follow_run
from tether.store.step_events import StepEvent

__all__ = ["follow", "step_line", "with_progress"]

T = TypeVar("T")


def step_line(event: StepEvent) -> str:
    """One printed line per step event: seq, step, state, then what is known of it."""
    parts = [f"#{event.seq:<3}", event.at.strftime("%H:%M:%S"), event.step, event.state]
    if event.model:
        parts.append(event.model)
    if event.confidence_score is not None:
        parts.append(f"confidence {event.confidence_score:.2f} {event.confidence_outcome or ''}")
    if event.latency_ms is not None:
        parts.append(f"{event.latency_ms:.0f} ms")
    if event.cost_usd:
        parts.append(f"${event.cost_usd:.6f}")
    if event.input_tokens or event.output_tokens:
        parts.append(f"tokens {event.input_tokens}/{event.output_tokens}")
    if event.actor:
        parts.append(f"by {event.actor}")
    if event.detail:
        parts.append(event.detail)
    parts.extend(f"[{g.get('guard')}: {g.get('outcome')}]" for g in event.guards)
    return "  ".join(part.strip() for part in parts)


async def follow(
    settings: Settings, run_id: str, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Print the run's steps as they happen; exit 0 when it completes, 1 when it failed or
    stopped. Raises InputError (exit 2) for a run Temporal does not know."""
    out, err = out or sys.stdout, err or sys.stderr
    client = await connect(settings)
    progress = ProgressLine(err)
    steps_done = 0
    async for item in follow_run(client, settings.resolved_database_url, run_id):
        progress.clear()
        if isinstance(item, RunEnded):
            detail = f" ({item.result_status})" if item.result_status else ""
            print(f"run {run_id} ended: {item.state}{detail}", file=out, flush=True)
            return 0 if item.state == "completed" else 1
        print(step_line(item), file=out, flush=True)
        steps_done += item.state in ("done", "approved", "edited")
        progress.show(f"{item.step}: {item.state.replace('_', ' ')}; {steps_done} steps done")
    return 1  # pragma: no cover - the feed always ends with RunEnded


async def with_progress(
    settings: Settings, client: Client, run_id: str, work: Coroutine[Any, Any, T]
) -> T:
    """Await ``work`` (waiting on the run) while a progress line on stderr, on a terminal only,
    names the step the run is at."""
    progress = ProgressLine(sys.stderr)
    if not progress.enabled:
        return await work

    async def show() -> None:
        async for item in follow_run(client, settings.resolved_database_url, run_id):
            if isinstance(item, StepEvent):
                progress.show(f"{run_id}: {item.step} {item.state.replace('_', ' ')}")

    watcher = asyncio.create_task(show())
    try:
        return await work
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        progress.clear()
