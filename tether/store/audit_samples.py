"""Audit samples: auto-accepted outputs copied into the review queue so a human checks them.

The run never waits for an audit: it has already gone on with the output. Deciding an audit
item is therefore recorded here only (status, decision, the labelled example, the audit log, all
in one transaction), not sent to a workflow; it labels whether auto-accept was right.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from tether.store.audit import append_event
from tether.store.cache import record_review_verdict
from tether.store.examples import AUDIT_SAMPLE, record_example
from tether.store.ledger import insert_once
from tether.store.reviews import ReviewItem, get_review

DECIDED_STATUS = {"approve": "approved", "reject": "rejected", "edit": "edited"}


def audit_sampled(run_id: str, step_key: str, rate: float) -> bool:
    """Whether this step's auto-accepted output is audited: a hash of the run and step key
    mapped onto [0, 1) and compared with ``rate``. Deterministic (a retried activity decides
    the same), and uniform across runs, so about ``rate`` of outputs are sampled."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{run_id}\x00{step_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def open_audit_sample(session: Session, item: ReviewItem) -> bool:
    """Put ``item`` (reason ``audit_sample``) in the queue once per review id; True if new."""
    inserted = insert_once(session, item)
    if inserted:
        append_event(
            session,
            key=f"review_opened:{item.review_id}",
            kind="review_opened",
            actor="tether",
            run_id=item.run_id,
            review_id=item.review_id,
            detail={
                "reason": AUDIT_SAMPLE,
                "step": item.step,
                "digest": item.output_digest,
                "confidence": item.confidence_score,
                "roles": item.allowed_roles,
            },
        )
    return inserted


def decide_audit_sample(
    session: Session,
    review_id: str,
    *,
    kind: str,
    reviewer: str,
    reason: str | None,
    edited_output: dict[str, object] | None,
    channel: str,
    decided_at: datetime,
) -> ReviewItem | None:
    """Record a reviewer's verdict on an audit item, once: returns the item, or None when it
    is not a pending audit item (already decided, or not an audit)."""
    # One conditional UPDATE: of two reviewers deciding at once, exactly one wins.
    claimed = session.execute(
        update(ReviewItem)
        .where(
            col(ReviewItem.review_id) == review_id,
            col(ReviewItem.reason) == AUDIT_SAMPLE,
            col(ReviewItem.decision).is_(None),
        )
        .values(
            status=DECIDED_STATUS[kind],
            decision=kind,
            decision_reason=reason,
            reviewer=reviewer,
            decided_at=decided_at,
            decided_via=channel,
            updated_at=decided_at,
        )
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    item = get_review(session, review_id)
    assert item is not None
    session.refresh(item)
    item.decided_output = edited_output if kind == "edit" else item.output
    session.add(item)
    session.flush()
    record_example(session, item)
    # An audited answer a reviewer rejected or edited is no longer served from the cache.
    record_review_verdict(session, item, kind, edited_output)
    append_event(
        session,
        key=f"review_decided:{review_id}",
        kind="review_decided",
        actor=reviewer,
        run_id=item.run_id,
        review_id=review_id,
        detail={"decision": kind, "reason": reason, "channel": channel, "audit": True},
    )
    return item
