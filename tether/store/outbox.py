"""The decision outbox: every reviewer's decision is written here before it is sent to its run.

Rows are ``DecisionIntent``s keyed by the decide update's id; ``review_ui.decisions`` sends them
and records the outcome through these functions, and its redelivery loop picks up the ones still
pending. Every function takes the caller's session, so one request is one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlmodel import Session, col, select

from tether.contracts import DecisionReceipt, JsonObject, ReviewDecision
from tether.store.ledger import insert_once
from tether.store.reviews import DecisionIntent, get_review

__all__ = [
    "find_intent",
    "pending_intents",
    "postpone_intent",
    "recorded_receipt",
    "settle_intent",
    "take_due_intents",
    "write_intent",
]

SettledState = Literal["delivered", "refused"]

_MAX_BACKOFF = timedelta(seconds=30)


def _now() -> datetime:
    return datetime.now(UTC)


def find_intent(
    session: Session, update_id: str, *, review_id: str | None = None
) -> DecisionIntent | None:
    """The decision sent under ``update_id`` (only if it is for ``review_id``, when given)."""
    statement = select(DecisionIntent).where(DecisionIntent.update_id == update_id)
    if review_id is not None:
        statement = statement.where(DecisionIntent.review_id == review_id)
    return session.exec(statement).first()


def pending_intents(session: Session, review_id: str) -> list[DecisionIntent]:
    """Decisions for this item still waiting to reach the run."""
    return list(
        session.exec(
            select(DecisionIntent).where(
                DecisionIntent.review_id == review_id, DecisionIntent.status == "pending"
            )
        ).all()
    )


def write_intent(
    session: Session,
    update_id: str,
    decision: ReviewDecision,
    run_id: str,
    *,
    first_attempt_for: timedelta,
) -> DecisionIntent:
    """Keep ``decision`` under ``update_id``, or return the row already kept under that id.

    Args:
        first_attempt_for: How long the caller's own first delivery may take; the redelivery
            loop leaves the row alone for twice that.
    """
    now = _now()
    insert_once(
        session,
        DecisionIntent(
            update_id=update_id,
            review_id=decision.review_id,
            run_id=run_id,
            decision=decision.model_dump(mode="json"),
            next_attempt_at=now + first_attempt_for * 2,
            created_at=now,
            updated_at=now,
        ),
    )
    intent = find_intent(session, update_id)
    assert intent is not None
    return intent


def take_due_intents(session: Session, limit: int, attempt_wait: timedelta) -> list[DecisionIntent]:
    """Pending intents whose retry time has come, each held back for this attempt."""
    now = _now()
    rows = list(
        session.exec(
            select(DecisionIntent)
            .where(DecisionIntent.status == "pending", DecisionIntent.next_attempt_at <= now)
            .order_by(col(DecisionIntent.next_attempt_at))
            .limit(limit)
        ).all()
    )
    for row in rows:
        # Claim the slot so an overlapping pass (or a second UI process) waits its turn.
        row.next_attempt_at = now + attempt_wait * 2
        session.add(row)
    return rows


def postpone_intent(session: Session, update_id: str, why: str) -> None:
    """Count a failed attempt and back off (2, 4, ... up to 30 s) before the next one."""
    intent = find_intent(session, update_id)
    if intent is None or intent.status != "pending":
        return
    intent.attempts += 1
    backoff = min(timedelta(seconds=2 ** min(intent.attempts, 5)), _MAX_BACKOFF)
    intent.next_attempt_at = _now() + backoff
    intent.last_error = why[:1000]
    intent.updated_at = _now()
    session.add(intent)


def settle_intent(
    session: Session,
    update_id: str,
    status: SettledState,
    error: str | None,
    receipt: JsonObject | None,
) -> None:
    """Record the run's answer; a settled intent is never sent again."""
    intent = find_intent(session, update_id)
    if intent is None or intent.status != "pending":
        return
    intent.status = status
    intent.attempts += 1
    intent.last_error = error[:1000] if error else None
    intent.receipt = receipt
    intent.updated_at = _now()
    session.add(intent)


def recorded_receipt(session: Session, decision: ReviewDecision) -> DecisionReceipt | None:
    """The receipt of ``decision`` when its review row already records it as taken."""
    item = get_review(session, decision.review_id)
    if (
        item is None
        or item.decision != decision.kind
        or item.reviewer != decision.reviewer
        or item.decided_at is None
    ):
        return None
    return DecisionReceipt(
        review_id=item.review_id,
        kind=decision.kind,
        reviewer=item.reviewer,
        decided_at=item.decided_at,
        output_digest=decision.output_digest,
    )
