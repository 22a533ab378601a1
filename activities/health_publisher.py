"""Publishes this worker's provider health to the store, so every web app sees every worker."""

from __future__ import annotations

import asyncio
import logging

from activities.deps import ActivityDeps
from tether.store.provider_health import publish_health

__all__ = ["publish_provider_health", "publish_until_cancelled"]

log = logging.getLogger(__name__)


async def publish_provider_health(deps: ActivityDeps) -> None:
    """Writes the registry's snapshot now (one row per model this worker has called)."""
    snapshot = deps.health.snapshot()
    await deps.in_session(
        lambda session: publish_health(
            session,
            worker=snapshot.worker,
            taken_at=snapshot.taken_at,
            window_s=snapshot.window_s,
            models=snapshot.models,
        )
    )


async def publish_until_cancelled(deps: ActivityDeps, every_s: float) -> None:
    """Publishes every ``every_s`` seconds until cancelled, then once more (the last state)."""
    try:
        while True:
            await asyncio.sleep(every_s)
            try:
                await publish_provider_health(deps)
            except Exception as exc:  # a store hiccup must not stop the worker
                log.warning("provider health not published: %s", type(exc).__name__)
    except asyncio.CancelledError:
        try:
            await asyncio.shield(publish_provider_health(deps))
        except Exception as exc:
            log.warning("provider health not published at shutdown: %s", type(exc).__name__)
        raise
