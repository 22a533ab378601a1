"""Request body limits, enforced before anything reads a body.

A pure ASGI middleware, outermost in the app, so it runs before authentication, before the Slack
signature check and before any handler: a request that declares a ``Content-Length`` over the
limit is answered 413 without a byte of its body read; a body that streams past the limit
(chunked, or a lying length) is cut off and answered 413 as soon as the count passes it.
Nothing is changed either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimits", "BodyTooLarge", "RequestBodyLimit"]

_SLACK_PREFIX = "/slack/"


@dataclass(frozen=True)
class BodyLimits:
    """Largest body accepted, in bytes: Slack's interactions, and everything else."""

    default: int
    slack: int

    def for_path(self, path: str) -> int:
        return self.slack if path.startswith(_SLACK_PREFIX) else self.default


class BodyTooLarge(HTTPException):
    """A body streamed past its limit; raised from ``receive`` to whoever was reading it (an
    HTTPException, so FastAPI's body parsing passes it on and the app answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_message(limit))
        self.limit = limit


def _too_large_message(limit: int) -> str:
    return f"the request body is over the {limit}-byte limit; nothing was read or changed"


class RequestBodyLimit:
    """Answer 413 to bodies over the limit, before the app reads them."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        received = 0
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if response_started:
                raise
            await _too_large(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large_message(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
