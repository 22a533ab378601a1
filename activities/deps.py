"""What activities need from the worker process: settings, policy, providers, store."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlmodel import Session

from activities.provider_health import ProviderHealth, provider_health
from activities.providers.registry import ProviderRegistry
from policies.models import TetherPolicy
from policies.route_rules import LearnedRule
from tether.core.settings import Settings
from tether.store.engine import is_sqlite, session_scope

T = TypeVar("T")


@dataclass(frozen=True)
class ActivityDeps:
    settings: Settings
    policy: TetherPolicy
    providers: ProviderRegistry
    # Where blocking store work runs; None is the event loop's default thread pool.
    store_executor: Executor | None = None
    # The worker process's breakers and call statistics, shared by all its activities.
    health: ProviderHealth = field(default_factory=provider_health)
    # The learned routing rule (nearest past inputs rejected or edited); None: no signal.
    learned_rule: LearnedRule | None = None

    async def in_session(self, work: Callable[[Session], T]) -> T:
        """Run blocking store work off the event loop so it keeps serving other activities."""

        def _run() -> T:
            with session_scope(self.settings.resolved_database_url) as session:
                return work(session)

        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.store_executor, context.run, _run)


@contextmanager
def store_executor_for(database_url: str) -> Iterator[Executor | None]:
    """One thread for SQLite, which takes one writer at a time anyway: threads queueing on its
    lock only add switching. ``None`` (the shared pool) for a server database."""
    if not is_sqlite(database_url):
        yield None
        return
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-store")
    try:
        yield executor
    finally:
        executor.shutdown(wait=True)
