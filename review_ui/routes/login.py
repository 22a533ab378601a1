"""Signing reviewers in and out of the pages (the embedded login of ``policy.reviewers``)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from review_ui.auth import (
    CSRF_FIELD,
    anonymous_session,
    check_password,
    csrf_matches,
    read_session,
    session_reviewer,
    signed_in_session,
    write_session,
)
from review_ui.deps import CurrentUser, Desk
from review_ui.rendering import form_text, render, safe_next

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, desk: Desk, next: str = "/") -> Response:
    session = read_session(desk, request)
    if session_reviewer(desk, session) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    session = session or anonymous_session()
    response = render(desk, request, "login.html", {"csrf": session.csrf, "next": next})
    write_session(desk, response, session)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, desk: Desk) -> Response:
    form = await request.form()
    session = read_session(desk, request)
    if session is None or not csrf_matches(session, form_text(form, CSRF_FIELD)):
        raise HTTPException(403, "the login form's security token is missing or out of date")
    name, next_path = form_text(form, "name").strip(), form_text(form, "next") or "/"
    reviewer = check_password(desk.policy, name, form_text(form, "password"))
    if reviewer is None:
        context = {
            "csrf": session.csrf,
            "next": next_path,
            "name": name,
            "error": "Wrong name or password.",
        }
        return render(desk, request, "login.html", context, status_code=401)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    write_session(desk, response, signed_in_session(desk, reviewer))
    return response


@router.post("/logout")
async def logout(desk: Desk, user: CurrentUser) -> Response:
    response = RedirectResponse("/login", status_code=303)
    write_session(desk, response, anonymous_session())
    return response
