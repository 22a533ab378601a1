"""Who is asking: signed session cookies and CSRF tokens for pages, HTTP Basic for the API.

Reviewers and their passwords come from the policy's embedded login (``policy.reviewers``).
A session carries a fingerprint of the reviewer's password, so changing it ends old sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from policies.effective import reviewer_by_name
from policies.models import Reviewer, TetherPolicy
from review_ui.context import Desk, ReviewDesk

SESSION_COOKIE = "tether_session"
SESSION_MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Compared against when the name is unknown, so timing does not reveal which names exist.
_DUMMY_PASSWORD = secrets.token_hex(16)


@dataclass(frozen=True)
class WebSession:
    """The content of the session cookie. ``reviewer`` is None before login."""

    csrf: str
    reviewer: str | None = None
    fingerprint: str | None = None


class LoginRequired(Exception):
    """A page needs a logged-in reviewer; the app redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def check_password(policy: TetherPolicy, name: str, password: str) -> Reviewer | None:
    """The reviewer when ``name`` and ``password`` match (constant-time compare), else None."""
    reviewer = reviewer_by_name(policy, name) if name else None
    expected = reviewer.password if reviewer is not None else _DUMMY_PASSWORD
    matches = hmac.compare_digest(password.encode(), expected.encode())
    return reviewer if reviewer is not None and matches else None


def _fingerprint(desk: ReviewDesk, reviewer: Reviewer) -> str:
    key = desk.settings.session_secret.get_secret_value().encode()
    return hmac.new(
        key, f"{reviewer.name}:{reviewer.password}".encode(), hashlib.sha256
    ).hexdigest()[:16]


def _serializer(desk: ReviewDesk) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        desk.settings.session_secret.get_secret_value(), salt="tether-session"
    )


def read_session(desk: ReviewDesk, request: Request) -> WebSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(desk).loads(raw, max_age=SESSION_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
        return None
    return WebSession(csrf=data["csrf"], reviewer=data.get("reviewer"), fingerprint=data.get("fp"))


def write_session(desk: ReviewDesk, response: Response, session: WebSession) -> None:
    value = _serializer(desk).dumps(
        {"csrf": session.csrf, "reviewer": session.reviewer, "fp": session.fingerprint}
    )
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=desk.settings.public_url.startswith("https://"),
        path="/",
    )


def anonymous_session() -> WebSession:
    return WebSession(csrf=secrets.token_urlsafe(24))


def signed_in_session(desk: ReviewDesk, reviewer: Reviewer) -> WebSession:
    """A fresh session (new CSRF token, so a token seen before login is worthless after)."""
    return WebSession(
        csrf=secrets.token_urlsafe(24),
        reviewer=reviewer.name,
        fingerprint=_fingerprint(desk, reviewer),
    )


def session_reviewer(desk: ReviewDesk, session: WebSession | None) -> Reviewer | None:
    if session is None or session.reviewer is None or session.fingerprint is None:
        return None
    reviewer = reviewer_by_name(desk.policy, session.reviewer)
    if reviewer is None:
        return None
    if not hmac.compare_digest(session.fingerprint, _fingerprint(desk, reviewer)):
        return None
    return reviewer


def csrf_matches(session: WebSession | None, token: str | None) -> bool:
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


# --- dependencies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageUser:
    """A logged-in reviewer on an HTML page, with the CSRF token its forms must carry."""

    reviewer: Reviewer
    csrf: str


async def page_user(request: Request, desk: Desk) -> PageUser:
    """The logged-in reviewer; on POST the form's CSRF token must match the session's.

    Raises:
        LoginRequired: no valid session.
        HTTPException: 403 when a POST's CSRF token is missing or wrong.
    """
    session = read_session(desk, request)
    reviewer = session_reviewer(desk, session)
    if reviewer is None or session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method in _UNSAFE_METHODS:
            target = "/"
        raise LoginRequired(target)
    if request.method in _UNSAFE_METHODS:
        form = await request.form()
        token = form.get(CSRF_FIELD)
        if not csrf_matches(session, token if isinstance(token, str) else None):
            raise HTTPException(403, "the form's security token is missing or out of date; reload")
    return PageUser(reviewer=reviewer, csrf=session.csrf)


def api_reviewer(request: Request, desk: Desk) -> Reviewer:
    """The reviewer calling the API: HTTP Basic, or a session cookie plus the CSRF header.

    Raises:
        HTTPException: 401 without valid credentials; 403 for a cookie POST without CSRF header.
    """
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        reviewer = _basic_reviewer(desk, header[6:].strip())
        if reviewer is not None:
            return reviewer
        raise _unauthorized("wrong reviewer name or password")
    session = read_session(desk, request)
    reviewer = session_reviewer(desk, session)
    if reviewer is None:
        raise _unauthorized(
            "authentication required: HTTP Basic with a reviewer's name and password"
        )
    if request.method in _UNSAFE_METHODS and not csrf_matches(
        session, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, f"a session-authenticated API call needs the {CSRF_HEADER} header")
    return reviewer


def _basic_reviewer(desk: ReviewDesk, encoded: str) -> Reviewer | None:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    if not sep:
        return None
    return check_password(desk.policy, name, password)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Basic realm="tether"'})


CurrentUser = Annotated[PageUser, Depends(page_user)]
ApiReviewer = Annotated[Reviewer, Depends(api_reviewer)]
