"""The retention job in a worker: prunes dead store rows every ``retention.every``.

Started with the worker (``tether.worker.running_worker``) as an asyncio task; the prune itself
(``tether.store.retention.prune_store``, batches of short transactions) runs on the worker's
store executor. An error is logged and the next prune tried on time: it never stops the worker.
Every worker prunes; two pruning at once only delete the same dead rows (a row already gone is
not counted twice).
"""

from __future__ import annotations

import asyncio
import logging

from activities.deps import ActivityDeps
from policies.retention_settings import RetentionPolicy
from tether.store.retention import PruneCounts, prune_store

__all__ = ["prune_now", "prune_until_cancelled"]

log = logging.getLogger(__name__)


async def prune_now(deps: ActivityDeps, policy: RetentionPolicy) -> PruneCounts:
    """One prune, on the worker's store executor (a thread: it never blocks the event loop)."""
    loop = asyncio.get_running_loop()
    url = deps.settings.resolved_database_url
    return await loop.run_in_executor(deps.store_executor, prune_store, url, policy)


async def prune_until_cancelled(deps: ActivityDeps, policy: RetentionPolicy) -> None:
    """Prunes every ``policy.every`` (the first one interval after start) until cancelled."""
    every_s = policy.every.total_seconds()
    while True:
        await asyncio.sleep(every_s)
        try:
            await prune_now(deps, policy)
        except Exception as exc:  # a store hiccup must not stop the worker
            log.warning("retention: prune failed: %s", type(exc).__name__)
