"""Server-side sessions and failed-login counts in the store."""

from __future__ import annotations

from datetime import timedelta

from tests.store.test_migrations import empty_db  # noqa: F401  (SQLite and PostgreSQL)
from tether.store.engine import session_scope
from tether.store.logins import (
    LoginThrottle,
    end_session,
    new_session,
    record_failed_login,
    retry_after_s,
    session_reviewer_name,
)


def test_a_session_lives_until_it_ends_or_expires(empty_db: str) -> None:  # noqa: F811
    url = empty_db
    with session_scope(url) as session:
        live = new_session(session, "alice", timedelta(hours=1))
        expired = new_session(session, "bob", timedelta(seconds=-1))
    with session_scope(url) as session:
        assert session_reviewer_name(session, live) == "alice"
        assert session_reviewer_name(session, expired) is None
        assert session_reviewer_name(session, "made-up") is None
        end_session(session, live)
    with session_scope(url) as session:
        assert session_reviewer_name(session, live) is None


def test_failures_throttle_a_name_and_an_address_separately(empty_db: str) -> None:  # noqa: F811
    url = empty_db
    throttle = LoginThrottle(max_failures=3, window=timedelta(minutes=15))
    with session_scope(url) as session:
        for _ in range(3):
            assert retry_after_s(session, "Alice", "10.0.0.1", throttle) is None
            record_failed_login(session, "Alice", "10.0.0.1", throttle)
        wait = retry_after_s(session, "alice", "10.0.0.2", throttle)  # the name, casefolded
        assert wait is not None and 0 < wait <= 15 * 60
        assert retry_after_s(session, "bob", "10.0.0.1", throttle) is not None  # the address
        assert retry_after_s(session, "bob", "10.0.0.2", throttle) is None
