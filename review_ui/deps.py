"""What request handlers ask FastAPI for, as ``Annotated`` aliases: the app's desk, the store
session of this request, and who is asking (a page's reviewer or an API caller)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends

from review_ui.auth import ApiReviewer, CurrentUser
from review_ui.context import Desk
from tether.store.engine import Session, session_scope

__all__ = [
    "ApiReviewer",
    "CurrentUser",
    "Desk",
    "SessionDep",
    "read_apart",
    "store_session",
]

P = ParamSpec("P")
T = TypeVar("T")


def store_session(desk: Desk) -> Iterator[Session]:
    """One store session per request: committed when the handler returns, rolled back on error."""
    with session_scope(desk.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(store_session, scope="function")]
"""The request's store session. ``scope="function"`` commits before the response is sent, so a
reviewer who follows a redirect already reads what the request wrote."""


async def read_apart(
    session: Session,
    operation: Callable[Concatenate[Session, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a store read off the event loop, then end its transaction.

    For async handlers that wait on Temporal between reads: no connection is held while they
    wait, and the next read sees what the run wrote meanwhile.
    """

    def run() -> T:
        try:
            return operation(session, *args, **kwargs)
        finally:
            session.close()

    return await asyncio.to_thread(run)
