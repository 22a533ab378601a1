"""What every request handler of the review app needs: settings, policy, store, Temporal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from policies.models import TetherPolicy
from tether.client import connect
from tether.core.settings import Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class TemporalLink:
    """The app's Temporal client, connected on first use: the queue works while Temporal is down."""

    settings: Settings
    client: Client | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self) -> Client:
        """The client, connecting now if needed.

        Raises:
            ServerUnreachableError: Temporal cannot be reached.
        """
        if self.client is not None:
            return self.client
        async with self._lock:
            if self.client is None:
                self.client = await connect(self.settings)
        return self.client


@dataclass
class ReviewDesk:
    """The app-wide state, kept on ``app.state.desk``."""

    settings: Settings
    policy: TetherPolicy
    temporal: TemporalLink
    templates: Jinja2Templates

    @property
    def database_url(self) -> str:
        return self.settings.resolved_database_url


def desk_of(request: Request) -> ReviewDesk:
    desk: ReviewDesk = request.app.state.desk
    return desk


Desk = Annotated[ReviewDesk, Depends(desk_of)]
