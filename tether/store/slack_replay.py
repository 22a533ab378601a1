"""Slack replay protection shared by every UI process: one row per signed Slack request.

Slack signs each request with a timestamp, and a signature older than the replay window is
refused anyway; within the window, the same signed request must be taken once, whichever replica
receives it and whether or not the app restarted in between. A unique row per signature does
that across processes; rows older than the window are pruned as new requests arrive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Field, Session, SQLModel, col, delete

from tether.store.ledger import insert_once

__all__ = ["SlackRequest", "claim_slack_request"]


def _now() -> datetime:
    return datetime.now(UTC)


class SlackRequest(SQLModel, table=True):
    """A signed Slack request already taken (its ``X-Slack-Signature``)."""

    __tablename__ = "slack_requests"

    id: int | None = Field(default=None, primary_key=True)
    signature: str = Field(unique=True, max_length=80)
    received_at: datetime = Field(default_factory=_now, index=True)


def claim_slack_request(
    session: Session, signature: str, *, window: timedelta, now: datetime | None = None
) -> bool:
    """Record ``signature`` as taken; False when it was taken before (a replay).

    Rows older than twice ``window`` are deleted first: such a request fails its timestamp
    check before it gets here, so its row protects nothing any more.
    """
    now = now or _now()
    session.exec(delete(SlackRequest).where(col(SlackRequest.received_at) < now - 2 * window))
    return insert_once(session, SlackRequest(signature=signature, received_at=now))
