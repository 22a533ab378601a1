"""Heartbeats for the model-calling activities, from their first line to their last."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

__all__ = ["HEARTBEAT_EVERY_S", "heartbeating"]

HEARTBEAT_EVERY_S = 2.0


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every ``HEARTBEAT_EVERY_S`` while the block runs, so Temporal notices a dead
    worker within the heartbeat timeout instead of waiting out the whole start-to-close
    timeout. None at the start: the server knows the activity just started, and a heartbeat
    there costs a server write for every step."""
    task = asyncio.create_task(_heartbeat_forever())
    try:
        yield
    finally:
        task.cancel()


async def _heartbeat_forever() -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        activity.heartbeat()
