"""The audit log's rows and how they are chained: the tables, the key and the canonical row.

``tether.store.audit`` appends and reads; ``audit_verify`` checks; ``audit_rechain`` moves rows
of before the key onto the keyed chain. This module is what they share.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

GENESIS = "sha256:" + "0" * 64
KEYED_PREFIX = "hmac-sha256:"
HEAD_ID = 1


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


class AuditHead(SQLModel, table=True):
    """The chain's head, one row (``id`` 1): the last seq and its hash."""

    __tablename__ = "audit_head"

    id: int = Field(default=HEAD_ID, primary_key=True)
    seq: int = 0
    hash: str = Field(default=GENESIS, max_length=80)
    keyed: bool = True
    """False while the rows are the plain SHA-256 chain of before the key (until re-chained)."""
    mac: str = Field(default="", max_length=80)
    """HMAC of (seq, hash) under the audit key: rolling the head back needs the key."""
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class AuditSigner:
    """The audit log's HMAC key and where its head is checkpointed outside the database."""

    key: bytes
    head_file: Path | None = None

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"AuditSigner(head_file={self.head_file!r})"

    def row_hash(self, prev_hash: str, event: AuditEvent) -> str:
        """HMAC-SHA256 over the previous hash and the canonical row."""
        mac = hmac.new(self.key, prev_hash.encode() + b"\n" + canonical_row(event), hashlib.sha256)
        return KEYED_PREFIX + mac.hexdigest()

    def head_mac(self, seq: int, head_hash: str) -> str:
        """HMAC-SHA256 over the head row's seq and hash."""
        mac = hmac.new(self.key, f"audit-head\n{seq}\n{head_hash}".encode(), hashlib.sha256)
        return KEYED_PREFIX + mac.hexdigest()


def canonical_row(event: AuditEvent) -> bytes:
    """The row as the hash covers it: every column but ids and hashes, in one JSON form."""
    return json.dumps(
        [
            event.seq,
            event.key,
            event.kind,
            event.actor,
            _utc_naive(event.at).isoformat(),
            event.run_id,
            event.review_id,
            event.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _utc_naive(at: datetime) -> datetime:
    """The time as stored: UTC, without its zone (SQLite drops it, PostgreSQL keeps it)."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)
