"""Re-chaining the plain SHA-256 audit rows of before the key under the keyed HMAC chain.

Rows written before the audit log was keyed carry a plain SHA-256 chain (anyone with write
access could recompute it). The first append with a key re-chains every such row under the key,
as they stand, and then records an ``audit_rechained`` event saying how many rows were re-chained
and whether their old chain still held (the seq of its first bad row if not), so tampering from
before the key stays on record rather than being blessed silently.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from tether.core.errors import ConfigurationError
from tether.store.audit_chain import (
    GENESIS,
    HEAD_ID,
    KEYED_PREFIX,
    AuditEvent,
    AuditHead,
    AuditSigner,
)


def legacy_hash(prev_hash: str, event: AuditEvent) -> str:
    """The plain SHA-256 a row carried before the key."""
    at: datetime = event.at
    body = json.dumps(
        [
            prev_hash,
            event.seq,
            event.key,
            event.kind,
            event.actor,
            at.replace(tzinfo=None).isoformat(),
            event.run_id,
            event.review_id,
            event.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def refuse_rechain_of_keyed_log(session: Session, signer: AuditSigner) -> None:
    """Re-chaining is for a log that was never keyed. If any row carries a keyed hash, or the
    head file says a keyed head was written, ``keyed = false`` was set by hand: re-chaining
    would re-sign edited rows, so refuse.

    Raises:
        ConfigurationError: the log was keyed before.
    """
    keyed_row = session.exec(
        select(AuditEvent.seq).where(col(AuditEvent.hash).startswith(KEYED_PREFIX)).limit(1)
    ).first()
    if keyed_row is not None or (signer.head_file is not None and signer.head_file.exists()):
        raise ConfigurationError(
            "the audit log's head says it is not keyed, but "
            + (
                f"seq {keyed_row} carries a keyed hash"
                if keyed_row is not None
                else f"{signer.head_file} holds a keyed head"
            )
            + ": audit_head.keyed was reset (tampering?); refusing to re-chain (re-sign) the "
            "log. Run tether audit verify"
        )


def rechain(session: Session, signer: AuditSigner) -> tuple[int, str]:
    """Re-chain every row under ``signer`` and mark the head keyed; the caller holds the head
    row's lock. Returns (next seq, previous hash) for the event being appended, after an
    ``audit_rechained`` event that records what the old chain was."""
    prev_legacy, prev_keyed = GENESIS, GENESIS
    expected, broken_at, rows, last_legacy = 1, None, 0, GENESIS
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all():
        if broken_at is None and (
            event.seq != expected
            or event.prev_hash != prev_legacy
            or event.hash != legacy_hash(prev_legacy, event)
        ):
            broken_at = event.seq
        prev_legacy, last_legacy, expected = event.hash, event.hash, event.seq + 1
        event.prev_hash = prev_keyed
        event.hash = signer.row_hash(prev_keyed, event)
        prev_keyed = event.hash
        session.add(event)
        rows += 1
    session.flush()
    detail: dict[str, Any] = {
        "rechained_rows": rows,
        "legacy_chain": "intact" if broken_at is None else f"broken at seq {broken_at}",
        "legacy_head": last_legacy,
    }
    marker = AuditEvent(
        seq=expected,
        key=f"audit_rechained:{expected}",
        at=datetime.now(UTC).replace(microsecond=0),
        kind="audit_rechained",
        actor="tether",
        detail=detail,
        prev_hash=prev_keyed,
        hash="",
    )
    marker.hash = signer.row_hash(prev_keyed, marker)
    session.add(marker)
    session.flush()
    head = AuditHead.__table__  # type: ignore[attr-defined]
    session.execute(
        update(head)
        .where(head.c.id == HEAD_ID)
        .values(seq=expected + 1, hash=marker.hash, keyed=True, mac="")
    )
    return expected + 1, marker.hash
