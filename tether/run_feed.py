"""Following a run: its step events as they happen, and how it ended.

The events come from the store (activities write them as steps settle and reviews open and
close); whether the run has ended comes from Temporal (``describe``, which needs no worker).
The live run page's stream (``GET /api/runs/{id}/events``) and ``tether status --follow``
both read a run through ``follow_run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from tether.client import jsonable
from tether.core.errors import InputError, ServerUnreachableError
from tether.store.engine import session_scope
from tether.store.run_list import record_run_end
from tether.store.step_events import StepEvent, events_after

__all__ = ["RunEnded", "follow_run", "run_ending"]

FOLLOW_POLL_S = 0.5
"""How often a follower looks for new events."""
END_CHECK_EVERY = 4
"""Ask Temporal whether the run ended every this many polls (events are read every poll)."""


class RunEnded(BaseModel):
    """The run closed: ``completed``, ``stopped`` (halted by a decision or a budget) or
    ``failed``; ``result_status`` is the workflow result's own status."""

    state: str
    result_status: str | None = None
    ended_at: datetime | None = None


async def run_ending(client: Client, run_id: str) -> RunEnded | None:
    """How ``run_id`` ended, or None while it runs.

    Raises:
        InputError: Temporal knows no such run.
        ServerUnreachableError: Temporal did not answer.
    """
    handle = client.get_workflow_handle(run_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise InputError(f"no run {run_id!r}") from exc
        raise ServerUnreachableError(f"Temporal did not say how run {run_id!r} is") from exc
    if described.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    if described.status == WorkflowExecutionStatus.COMPLETED:
        try:
            result = jsonable(await handle.result())
        except WorkflowFailureError:  # pragma: no cover - a completed run has a result
            result = {}
        status = result.get("status")
        return RunEnded(
            state="completed" if status == "completed" else "stopped",
            result_status=status if isinstance(status, str) else None,
            ended_at=described.close_time,
        )
    return RunEnded(
        state="failed", result_status=described.status.name.lower(), ended_at=described.close_time
    )


def remember_run_end(database_url: str, run_id: str, ended: RunEnded) -> None:
    """Write how the run ended into the run registry (the runs list then need not ask)."""
    with session_scope(database_url) as session:
        record_run_end(session, run_id, ended.state, ended.ended_at)


def read_events(database_url: str, run_id: str, after_seq: int) -> list[StepEvent]:
    with session_scope(database_url) as session:
        return events_after(session, run_id, after_seq)


async def follow_run(
    client: Client,
    database_url: str,
    run_id: str,
    *,
    after_seq: int = 0,
    poll_s: float = FOLLOW_POLL_S,
) -> AsyncIterator[StepEvent | RunEnded]:
    """Each step event of ``run_id`` after ``after_seq``, in order, as it is written; then a
    ``RunEnded`` once the run has closed and every event it wrote has been yielded.

    Raises:
        InputError: Temporal knows no such run.
    """
    polls = 0
    while True:
        # Whether it ended is read before the events: an event written just before the close
        # is then always read before the end is reported.
        ended = await run_ending(client, run_id) if polls % END_CHECK_EVERY == 0 else None
        events = await asyncio.to_thread(read_events, database_url, run_id, after_seq)
        for event in events:
            after_seq = event.seq
            yield event
        if ended is not None:
            await asyncio.to_thread(remember_run_end, database_url, run_id, ended)
            yield ended
            return
        polls += 1
        if not events:
            await asyncio.sleep(poll_s)
