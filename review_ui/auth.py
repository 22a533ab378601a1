"""Who is asking: server-side sessions and CSRF tokens for pages, HTTP Basic for the API.

Reviewers and their argon2 password hashes come from the policy (``policy.reviewers``). The
session cookie is signed and carries a CSRF token and a random session id, nothing derived from
a password; the session itself is a store row that logout deletes. Failed logins (form and
Basic) are throttled per name and per address in the store, so every replica counts them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from policies.effective import reviewer_by_name
from policies.models import Reviewer, TetherPolicy
from policies.passwords import password_matches
from review_ui.context import Desk, ReviewDesk
from tether.store import logins
from tether.store.engine import session_scope

SESSION_COOKIE = "tether_session"
SESSION_MAX_AGE_S = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
THROTTLE = logins.LoginThrottle()
# argon2 takes ~64 MiB and a core for each verification: a burst of logins waits its turn.
MAX_CONCURRENT_VERIFICATIONS = 4
_verifying = threading.BoundedSemaphore(MAX_CONCURRENT_VERIFICATIONS)
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class WebSession:
    """The content of the session cookie. ``session_id`` is None before login."""

    csrf: str
    session_id: str | None = None


class LoginRequired(Exception):
    """A page needs a logged-in reviewer; the app redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class _VerifiedLogins:
    """Name/password pairs already verified against their hash, so an API client sending HTTP
    Basic on every call costs one argon2 verification, not one per call. Keyed by an HMAC under
    a per-process random key; nothing here outlives the process."""

    def __init__(self, size: int = 256) -> None:
        self._key = secrets.token_bytes(32)
        self._seen: dict[bytes, None] = {}
        self._size = size
        self._lock = threading.Lock()

    def _mark(self, reviewer: Reviewer, password: str) -> bytes:
        material = f"{reviewer.name}\0{reviewer.password_hash}\0{password}".encode()
        return hmac.new(self._key, material, hashlib.sha256).digest()

    def known(self, reviewer: Reviewer, password: str) -> bool:
        with self._lock:
            return self._mark(reviewer, password) in self._seen

    def remember(self, reviewer: Reviewer, password: str) -> None:
        with self._lock:
            if len(self._seen) >= self._size:
                self._seen.pop(next(iter(self._seen)))
            self._seen[self._mark(reviewer, password)] = None


_verified = _VerifiedLogins()


def known_login(policy: TetherPolicy, name: str, password: str) -> Reviewer | None:
    """The reviewer when this process already verified ``password`` for ``name``."""
    reviewer = reviewer_by_name(policy, name) if name else None
    if reviewer is None or reviewer.password is not None:
        return None
    return reviewer if _verified.known(reviewer, password) else None


def check_password(policy: TetherPolicy, name: str, password: str) -> Reviewer | None:
    """The reviewer when ``name`` (casefolded) and ``password`` match, else None.

    An unknown name costs the same argon2 verification, so timing does not reveal which names
    exist. A plaintext ``password`` (dev policies only) is compared in constant time.
    """
    reviewer = reviewer_by_name(policy, name) if name else None
    if reviewer is not None and reviewer.password is not None:
        if hmac.compare_digest(password.encode(), reviewer.password.encode()):
            return reviewer
        return None
    if reviewer is not None and _verified.known(reviewer, password):
        return reviewer
    with _verifying:
        matches = password_matches(password, reviewer.password_hash if reviewer else None)
    if reviewer is None or not matches:
        return None
    _verified.remember(reviewer, password)
    return reviewer


def client_address(desk: ReviewDesk, request: Request) -> str | None:
    """The caller's address: the one the trusted proxy saw (last X-Forwarded-For entry) when
    ``TETHER_TRUST_PROXY`` is set, else the socket's peer."""
    if desk.settings.trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.client.host if request.client else None


def request_is_https(desk: ReviewDesk, request: Request) -> bool:
    """Whether the browser talks https to us: the public URL, or the trusted proxy says so."""
    if desk.settings.public_url.startswith("https://") or request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return desk.settings.trust_proxy and proto == "https"


class LoginThrottled(Exception):
    """Too many failed logins for this name or address; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def authenticate(
    desk: ReviewDesk, name: str, password: str, address: str | None
) -> Reviewer | None:
    """Check a login against the throttle and the policy; a failure is counted.

    The attempt is committed to the store before it is counted, and counted before the password
    is checked, so concurrent guesses for one name cannot all pass the throttle: each sees every
    attempt committed before its own count. A success or a refusal takes its attempt back off.

    Raises:
        LoginThrottled: this name or address failed too often within the window (the password
            is not even checked).
    """
    known = known_login(desk.policy, name, password)
    if known is not None:
        # A pair this process already verified (an API client sending Basic on every call):
        # no guess to count, but a throttled name or address is still refused.
        with session_scope(desk.database_url) as session:
            wait = logins.retry_after_s(session, name, address, THROTTLE)
        if wait is not None:
            raise LoginThrottled(wait)
        return known
    with session_scope(desk.database_url) as session:
        attempt = logins.record_attempt(session, name, address, THROTTLE)
    with session_scope(desk.database_url) as session:
        wait = logins.retry_after_s(session, name, address, THROTTLE, including_this=True)
        if wait is not None:
            logins.forget_attempt(session, attempt)
    if wait is not None:
        raise LoginThrottled(wait)
    reviewer = check_password(desk.policy, name, password)
    if reviewer is not None:
        with session_scope(desk.database_url) as session:
            logins.forget_attempt(session, attempt)
    return reviewer


def throttled(exc: LoginThrottled) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


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
    session_id = data.get("sid")
    return WebSession(
        csrf=data["csrf"], session_id=session_id if isinstance(session_id, str) else None
    )


def write_session(
    desk: ReviewDesk, response: Response, session: WebSession, *, secure: bool | None = None
) -> None:
    value = _serializer(desk).dumps({"csrf": session.csrf, "sid": session.session_id})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=desk.settings.public_url.startswith("https://") if secure is None else secure,
        path="/",
    )


def anonymous_session() -> WebSession:
    return WebSession(csrf=secrets.token_urlsafe(24))


def signed_in_session(desk: ReviewDesk, reviewer: Reviewer) -> WebSession:
    """A fresh session row and cookie (new CSRF token, so a token seen before login is
    worthless after)."""
    with session_scope(desk.database_url) as session:
        session_id = logins.new_session(
            session, reviewer.name, timedelta(seconds=SESSION_MAX_AGE_S)
        )
    return WebSession(csrf=secrets.token_urlsafe(24), session_id=session_id)


def end_web_session(desk: ReviewDesk, session: WebSession | None) -> None:
    """Delete the session's row: its cookie, replayed, no longer signs anyone in."""
    if session is None or session.session_id is None:
        return
    with session_scope(desk.database_url) as store:
        logins.end_session(store, session.session_id)


def session_reviewer(desk: ReviewDesk, session: WebSession | None) -> Reviewer | None:
    """The reviewer of a live session row (blocking: call it off the event loop)."""
    if session is None or session.session_id is None:
        return None
    with session_scope(desk.database_url) as store:
        name = logins.session_reviewer_name(store, session.session_id)
    return reviewer_by_name(desk.policy, name) if name is not None else None


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
    reviewer = await asyncio.to_thread(session_reviewer, desk, session)
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
        HTTPException: 401 without valid credentials; 403 for a cookie POST without CSRF header;
            429 after too many failed logins of this name or address.
    """
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            reviewer = _basic_reviewer(desk, header[6:].strip(), client_address(desk, request))
        except LoginThrottled as exc:
            raise throttled(exc) from None
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


def _basic_reviewer(desk: ReviewDesk, encoded: str, address: str | None) -> Reviewer | None:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    if not sep:
        return None
    return authenticate(desk, name, password, address)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Basic realm="tether"'})


CurrentUser = Annotated[PageUser, Depends(page_user)]
ApiReviewer = Annotated[Reviewer, Depends(api_reviewer)]
