"""The append-only, hash-chained audit log of model calls, decisions and policy actions.

Each event stores the hash of its predecessor; ``seq`` is unique, so two writers racing for the
same position cannot fork the chain (the loser retries on the new head). ``verify_chain``
recomputes every hash, so any edit or deletion in the middle is detected.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

GENESIS = "sha256:" + "0" * 64


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    key: str = Field(unique=True, max_length=400)
    """Idempotency key: an activity retried after writing its event does not write it again."""
    at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    kind: str = Field(index=True, max_length=60)
    run_id: str | None = Field(default=None, index=True, max_length=200)
    review_id: str | None = Field(default=None, index=True, max_length=300)
    actor: str = Field(max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    prev_hash: str = Field(max_length=80)
    hash: str = Field(max_length=80)


def _event_hash(
    prev_hash: str,
    seq: int,
    key: str,
    kind: str,
    actor: str,
    at: datetime,
    run_id: str | None,
    review_id: str | None,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        [
            prev_hash,
            seq,
            key,
            kind,
            actor,
            at.replace(tzinfo=None).isoformat(),
            run_id,
            review_id,
            detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def append_event(
    session: Session,
    *,
    key: str,
    kind: str,
    actor: str,
    run_id: str | None = None,
    review_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event (or return the existing one with this key)."""
    detail = detail or {}
    for _ in range(20):
        existing = session.exec(select(AuditEvent).where(AuditEvent.key == key)).first()
        if existing is not None:
            return existing
        head = session.exec(
            select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)
        ).first()
        seq = head.seq + 1 if head else 1
        prev = head.hash if head else GENESIS
        at = datetime.now(UTC).replace(microsecond=0)
        event = AuditEvent(
            seq=seq,
            key=key,
            at=at,
            kind=kind,
            actor=actor,
            run_id=run_id,
            review_id=review_id,
            detail=detail,
            prev_hash=prev,
            hash=_event_hash(prev, seq, key, kind, actor, at, run_id, review_id, detail),
        )
        try:
            with session.begin_nested():
                session.add(event)
        except IntegrityError:
            continue
        return event
    raise RuntimeError("audit log is too contended to append; retry the operation")


def verify_chain(session: Session) -> int | None:
    """Return the seq of the first broken event, or None when the whole chain holds."""
    prev = GENESIS
    expected_seq = 1
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))):
        recomputed = _event_hash(
            prev,
            event.seq,
            event.key,
            event.kind,
            event.actor,
            event.at,
            event.run_id,
            event.review_id,
            event.detail,
        )
        if event.seq != expected_seq or event.prev_hash != prev or event.hash != recomputed:
            return event.seq
        prev = event.hash
        expected_seq += 1
    return None


def events_for(
    session: Session, *, run_id: str | None = None, review_id: str | None = None
) -> list[AuditEvent]:
    query = select(AuditEvent)
    if run_id is not None:
        query = query.where(AuditEvent.run_id == run_id)
    if review_id is not None:
        query = query.where(AuditEvent.review_id == review_id)
    return list(session.exec(query.order_by(col(AuditEvent.seq))).all())
