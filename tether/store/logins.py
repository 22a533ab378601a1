"""Review UI logins: server-side sessions and failed-login throttling, shared by every replica.

A session cookie carries only a random id; the row holds a hash of it (a copy of the table does
not let anyone sign in), the reviewer and the expiry. Logout deletes the row, so a replayed
cookie is refused. Login attempts are counted per name and per address over a sliding window:
an attempt is written (and committed) before its password is checked, then counted, so of N
concurrent guesses at most the limit reach the check; an attempt that succeeds, or is turned
away, is taken off the count again, so only failed checks hold a name or address back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Field, Index, Session, SQLModel, col, select

__all__ = [
    "FailedLogin",
    "LoginThrottle",
    "WebSession",
    "end_session",
    "forget_attempt",
    "new_session",
    "record_attempt",
    "record_failed_login",
    "retry_after_s",
    "session_reviewer_name",
]


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite drops the zone


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class WebSession(SQLModel, table=True):
    """A signed-in reviewer's session; the cookie holds the id whose SHA-256 is ``id_hash``."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    reviewer: str = Field(index=True, max_length=200)
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime = Field(index=True)


class FailedLogin(SQLModel, table=True):
    """One failed login, counted against its name (``kind`` "name") and address ("address")."""

    __tablename__ = "failed_logins"
    __table_args__ = (Index("ix_failed_logins_subject", "kind", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)
    subject: str = Field(max_length=200)
    at: datetime = Field(default_factory=_now, index=True)


def new_session(session: Session, reviewer: str, lifetime: timedelta) -> str:
    """Open a session for ``reviewer``; returns its random id (for the cookie only)."""
    session_id = secrets.token_urlsafe(32)
    now = _now()
    session.add(
        WebSession(
            id_hash=_digest(session_id),
            reviewer=reviewer,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.exec(delete(WebSession).where(col(WebSession.expires_at) < now))
    session.flush()
    return session_id


def session_reviewer_name(session: Session, session_id: str) -> str | None:
    """The reviewer of a live session, or None when it ended, expired or never existed."""
    row = session.exec(
        select(WebSession.reviewer).where(
            col(WebSession.id_hash) == _digest(session_id), col(WebSession.expires_at) > _now()
        )
    ).first()
    return row


def end_session(session: Session, session_id: str) -> None:
    """Delete the session (logout): its cookie is worthless from now on."""
    session.exec(delete(WebSession).where(col(WebSession.id_hash) == _digest(session_id)))


@dataclass(frozen=True)
class LoginThrottle:
    """At most ``max_failures`` failed logins per name and per address within ``window``."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


def _subjects(name: str, address: str | None) -> list[tuple[str, str]]:
    subjects = [("name", name.strip().casefold()[:200])]
    if address:
        subjects.append(("address", address[:200]))
    return subjects


def retry_after_s(
    session: Session,
    name: str,
    address: str | None,
    throttle: LoginThrottle,
    *,
    including_this: bool = False,
) -> int | None:
    """Seconds until the name or address may try again, or None when it may try now.

    ``including_this``: the caller's own attempt is already recorded (``record_attempt``), so
    it is allowed while the count, itself included, is within the limit.
    """
    limit = throttle.max_failures + (1 if including_this else 0)
    now = _now()
    since = now - throttle.window
    wait = 0.0
    for kind, subject in _subjects(name, address):
        recent = (
            select(func.count(), func.min(FailedLogin.at))
            .where(col(FailedLogin.kind) == kind, col(FailedLogin.subject) == subject)
            .where(col(FailedLogin.at) > since)
        )
        count, oldest = session.exec(recent).one()
        if count >= limit and oldest is not None:
            wait = max(wait, (_utc(oldest) + throttle.window - now).total_seconds())
    return max(1, int(wait) + 1) if wait > 0 else None


def record_attempt(
    session: Session, name: str, address: str | None, throttle: LoginThrottle
) -> list[int]:
    """Record a login attempt against its name and address before its password is checked
    (commit before counting it with ``retry_after_s(..., including_this=True)``); returns the
    rows' ids for ``forget_attempt``."""
    now = _now()
    rows = [
        FailedLogin(kind=kind, subject=subject, at=now)
        for kind, subject in _subjects(name, address)
    ]
    session.add_all(rows)
    session.exec(delete(FailedLogin).where(col(FailedLogin.at) < now - throttle.window))
    session.flush()
    return [row.id for row in rows if row.id is not None]


def forget_attempt(session: Session, attempt: list[int]) -> None:
    """Take an attempt off the count: it succeeded, or was turned away without a check."""
    if attempt:
        session.exec(delete(FailedLogin).where(col(FailedLogin.id).in_(attempt)))


def record_failed_login(
    session: Session, name: str, address: str | None, throttle: LoginThrottle
) -> None:
    """Count a failed login against its name and address (and drop failures past the window)."""
    now = _now()
    for kind, subject in _subjects(name, address):
        session.add(FailedLogin(kind=kind, subject=subject, at=now))
    session.exec(delete(FailedLogin).where(col(FailedLogin.at) < now - throttle.window))
    session.flush()
