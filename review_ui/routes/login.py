"""Signing reviewers in and out of the pages (the logins of ``policy.reviewers``).

Failed logins are throttled per name and per address (429 with Retry-After); a login opens a
server-side session, and logout deletes it, so a copy of the old cookie signs nobody in.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from review_ui.auth import (
    CSRF_FIELD,
    LoginThrottled,
    anonymous_session,
    authenticate,
    client_address,
    csrf_matches,
    end_web_session,
    read_session,
    request_is_https,
    session_reviewer,
    signed_in_session,
    write_session,
)
from review_ui.deps import CurrentUser, Desk
from review_ui.rendering import form_text, render, safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, desk: Desk, next: str = "/") -> Response:
    session = read_session(desk, request)
    if await asyncio.to_thread(session_reviewer, desk, session) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    session = session or anonymous_session()
    response = render(desk, request, "login.html", {"csrf": session.csrf, "next": next})
    write_session(desk, response, session, secure=request_is_https(desk, request))
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, desk: Desk) -> Response:
    form = await request.form()
    session = read_session(desk, request)
    if session is None or not csrf_matches(session, form_text(form, CSRF_FIELD)):
        raise HTTPException(403, "the login form's security token is missing or out of date")
    name, next_path = form_text(form, "name").strip(), form_text(form, "next") or "/"
    context = {"csrf": session.csrf, "next": next_path, "name": name}
    try:
        reviewer = await asyncio.to_thread(
            authenticate, desk, name, form_text(form, "password"), client_address(desk, request)
        )
    except LoginThrottled as exc:
        context["error"] = f"Too many failed logins. Try again in {exc.retry_after_s} seconds."
        response = render(desk, request, "login.html", context, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if reviewer is None:
        context["error"] = "Wrong name or password."
        return render(desk, request, "login.html", context, status_code=401)
    fresh = await asyncio.to_thread(signed_in_session, desk, reviewer)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    write_session(desk, response, fresh, secure=request_is_https(desk, request))
    return response


@router.post("/logout")
async def logout(request: Request, desk: Desk, user: CurrentUser) -> Response:
    await asyncio.to_thread(end_web_session, desk, read_session(desk, request))
    response = RedirectResponse("/login", status_code=303)
    write_session(desk, response, anonymous_session(), secure=request_is_https(desk, request))
    return response
