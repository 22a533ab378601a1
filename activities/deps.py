"""What activities need from the worker process: settings, policy, providers, store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Session

from activities.providers.registry import ProviderRegistry
from policies.models import TetherPolicy
from tether.settings import Settings
from tether.store.engine import session_scope

T = TypeVar("T")


@dataclass(frozen=True)
class ActivityDeps:
    settings: Settings
    policy: TetherPolicy
    providers: ProviderRegistry

    async def in_session(self, work: Callable[[Session], T]) -> T:
        """Run blocking store work in a thread so the event loop keeps serving other activities."""

        def _run() -> T:
            with session_scope(self.settings.resolved_database_url) as session:
                return work(session)

        return await asyncio.to_thread(_run)
