"""One error body for the whole HTTP API: ``{"detail": "<one line>"}``, validation errors
included, and the OpenAPI responses that say so.

Routes name the statuses they return with ``error_responses(...)``; the app installs
``install_error_handlers`` so that what the document says is what a caller gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

__all__ = [
    "API_PREFIXES",
    "ErrorBody",
    "error_body",
    "error_responses",
    "install_error_handlers",
    "validation_message",
]

API_PREFIXES = ("/api", "/slack", "/healthz", "/docs", "/openapi")
"""Paths answered in JSON; every other path is a page and gets the HTML error page."""

_DESCRIPTIONS = {
    400: "Bad request: the message says what is wrong.",
    401: "No valid credentials (HTTP Basic, or a session cookie).",
    403: "Authenticated, but not allowed to do this.",
    404: "No such resource.",
    409: "Conflicts with the current state: the message says why.",
    413: "The request body is over the size limit; nothing was read or changed.",
    422: "The request is invalid: the message names the field and the problem.",
    429: "Too many requests: the message names the limit; retry after ``Retry-After`` seconds.",
    503: "A service Tether needs (Temporal, a worker, Slack's secret) is not available.",
}


class ErrorBody(BaseModel):
    """Every error the API returns, whatever its status."""

    detail: str = Field(description="What went wrong, in one line.")


def error_body(status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses, each with the ``ErrorBody`` model."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def validation_message(errors: Sequence[Any]) -> str:
    """The first validation error in one line: ``where: message`` (``body.input: ...``)."""
    if not errors:
        return "the request is invalid"
    first = errors[0]
    if not isinstance(first, dict):
        return str(first)
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def install_error_handlers(app: FastAPI) -> None:
    """Validation errors on JSON paths answer 422 with the one error body."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_body(422, validation_message(exc.errors()))
