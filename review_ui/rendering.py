"""Rendering pages and the small things every page handler needs: flash notes, form fields,
safe redirect targets."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData

from review_ui.context import ReviewDesk

FLASH_COOKIE = "tether_flash"
_FLASH_MAX_AGE_S = 60

Flash = tuple[str, str]
"""(kind, text): kind is ok, error or wait."""


def render(
    desk: ReviewDesk,
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    clear_flash: bool = False,
) -> Response:
    """A template response that is never cached (pages show live review state)."""
    response = desk.templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if clear_flash and FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _flash_serializer(desk: ReviewDesk) -> URLSafeTimedSerializer:
    secret = desk.settings.session_secret.get_secret_value()
    return URLSafeTimedSerializer(secret, salt="tether-flash")


def write_flash(desk: ReviewDesk, response: Response, flash: Flash) -> None:
    """A one-time note for the page a redirect lands on (signed, so it cannot be forged)."""
    response.set_cookie(
        FLASH_COOKIE,
        _flash_serializer(desk).dumps(list(flash)),
        max_age=_FLASH_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        path="/",
    )


def read_flash(desk: ReviewDesk, request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, text = _flash_serializer(desk).loads(raw, max_age=_FLASH_MAX_AGE_S)
    except (BadSignature, ValueError):
        return None
    return str(kind), str(text)


def form_text(form: FormData, key: str) -> str:
    """A text field of a submitted form ("" when absent or a file)."""
    value = form.get(key)
    return value if isinstance(value, str) else ""


def safe_next(path: str) -> str:
    """``path`` if it stays on this site, else "/": never redirect a reviewer to another host."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/"
