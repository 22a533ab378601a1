"""The review queue: filtering, counting and paging in SQL; claiming and releasing items."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, func, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from tether.contracts import ReviewReason
from tether.store.audit import AuditEvent, append_event, events_for
from tether.store.reviews import QueueRow, ReviewItem, get_review

PAGE_SIZE = 50
StatusFilter = Literal[
    "pending",
    "approved",
    "rejected",
    "edited",
    "retried",
    "expired",
    "failed",
    "defaulted",
    "all",
]
STATUSES: tuple[str, ...] = tuple(s for s in get_args(StatusFilter) if s != "all")
TIMED_OUT: tuple[str, ...] = ("expired", "failed", "defaulted")
"""Statuses of items a timeout ended: expired, the policy's default failed the run, or its
default action (approve or reject) was taken. The ``expired`` filter shows all three."""
REASONS: tuple[str, ...] = get_args(ReviewReason)
QueueSort = Literal["due", "oldest", "newest", "confidence"]
ClaimFilter = Literal["any", "mine", "unclaimed"]


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters and page. ``status`` "all" shows every status; "expired" every item
    a timeout ended (``TIMED_OUT``); ``tenants`` None shows every tenant (the caller's tenants
    otherwise)."""

    workflow: str | None = None
    status: str = "pending"
    reason: str | None = None
    claimed: ClaimFilter = "any"
    sort: QueueSort = "due"
    page: int = 1
    per_page: int = PAGE_SIZE
    tenants: tuple[str, ...] | None = None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    query: QueueQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))

    @property
    def first(self) -> int:
        return 0 if self.total == 0 else (self.query.page - 1) * self.query.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.query.page * self.query.per_page)


# The queue reads only the columns of its public shape, never the output or schema.
_ROW_NAMES = tuple(QueueRow.model_fields)
_ROW_COLUMNS = [col(getattr(ReviewItem, name)) for name in _ROW_NAMES]


def list_queue(session: Session, query: QueueQuery, *, me: str | None = None) -> QueuePage:
    """One page of the queue and the total count, both computed by the database."""
    conditions: list[ColumnElement[bool]] = []
    if query.tenants is not None:
        conditions.append(col(ReviewItem.tenant).in_(query.tenants))
    if query.status != "all":
        conditions.append(_status_condition(query.status))
    if query.workflow:
        conditions.append(col(ReviewItem.workflow) == query.workflow)
    if query.reason:
        conditions.append(col(ReviewItem.reason) == query.reason)
    if query.claimed == "mine":
        conditions.append(col(ReviewItem.claimed_by) == me)
    elif query.claimed == "unclaimed":
        conditions.append(col(ReviewItem.claimed_by).is_(None))
    total = session.exec(select(func.count()).select_from(ReviewItem).where(*conditions)).one()
    order: tuple[Any, ...] = {
        # Overdue items have the earliest due time, so they come first.
        "due": (col(ReviewItem.due_at).asc(), col(ReviewItem.id).asc()),
        "oldest": (col(ReviewItem.opened_at).asc(), col(ReviewItem.id).asc()),
        "newest": (col(ReviewItem.opened_at).desc(), col(ReviewItem.id).desc()),
        "confidence": (col(ReviewItem.confidence_score).asc(), col(ReviewItem.id).asc()),
    }[query.sort]
    statement: Any = (  # many columns: beyond the typed overloads of select()
        select_columns(*_ROW_COLUMNS)
        .where(*conditions)
        .order_by(*order)
        .offset((query.page - 1) * query.per_page)
        .limit(query.per_page)
    )
    rows = [  # rows the store wrote: built as they are, not validated again
        QueueRow.model_construct(**dict(zip(_ROW_NAMES, row, strict=True)))
        for row in session.exec(statement).all()
    ]
    return QueuePage(rows=rows, total=int(total), query=query)


def workflow_counts(
    session: Session, status: str, tenants: tuple[str, ...] | None = None
) -> dict[str, int]:
    """How many items each workflow has in ``status`` (for the filter menu), of ``tenants``."""
    statement = select(ReviewItem.workflow, func.count()).group_by(col(ReviewItem.workflow))
    if tenants is not None:
        statement = statement.where(col(ReviewItem.tenant).in_(tenants))
    if status != "all":
        statement = statement.where(_status_condition(status))
    return {name: int(count) for name, count in session.exec(statement).all()}


def _status_condition(status: str) -> Any:
    if status == "expired":
        return col(ReviewItem.status).in_(TIMED_OUT)
    return col(ReviewItem.status) == status


# --- claims -------------------------------------------------------------------------------------


class ClaimRefused(Exception):
    """A claim or release was refused; the message says why, for the reviewer."""


def claim(
    session: Session, review_id: str, reviewer: str, roles: Sequence[str] | None = None
) -> ReviewItem:
    """Claim a pending item for ``reviewer``; refused when another reviewer holds it.

    Args:
        roles: The reviewer's roles; when given, only someone who may decide the item claims it.

    Raises:
        ClaimRefused: the item is decided, held by someone else, or not the reviewer's to decide.
        LookupError: no such item.
    """
    if roles is not None:
        current = get_review(session, review_id)
        if current is None:
            raise LookupError(review_id)
        if not set(roles) & set(current.allowed_roles):
            raise ClaimRefused(
                f"{reviewer} may not decide {current.workflow} reviews, so cannot claim them"
            )
    now = datetime.now(UTC)
    # One conditional UPDATE, so two reviewers claiming at once cannot both win.
    result = session.exec(
        update(ReviewItem)
        .where(
            col(ReviewItem.review_id) == review_id,
            col(ReviewItem.status) == "pending",
            (col(ReviewItem.claimed_by).is_(None)) | (col(ReviewItem.claimed_by) == reviewer),
        )
        .values(claimed_by=reviewer, claimed_at=now, updated_at=now)
    )
    item = get_review(session, review_id)
    if item is None:
        raise LookupError(review_id)
    session.refresh(item)
    if result.rowcount == 0:
        if item.status != "pending":
            raise ClaimRefused(f"this item is already {item.status}; there is nothing to claim")
        raise ClaimRefused(f"{item.claimed_by} has already claimed this item")
    _record_claim_change(session, "review_claimed", item, reviewer)
    return item


def release(session: Session, review_id: str, reviewer: str) -> ReviewItem:
    """Release ``reviewer``'s claim on an item.

    Raises:
        ClaimRefused: someone else holds the claim (or nobody does).
        LookupError: no such item.
    """
    item = get_review(session, review_id)
    if item is None:
        raise LookupError(review_id)
    if item.claimed_by is None:
        raise ClaimRefused("nobody has claimed this item")
    if item.claimed_by != reviewer:
        raise ClaimRefused(f"only {item.claimed_by}, who claimed this item, can release it")
    result = session.exec(
        update(ReviewItem)
        .where(col(ReviewItem.review_id) == review_id, col(ReviewItem.claimed_by) == reviewer)
        .values(claimed_by=None, claimed_at=None, updated_at=datetime.now(UTC))
    )
    if result.rowcount == 0:
        raise ClaimRefused("the claim changed meanwhile; reload the page")
    session.refresh(item)
    _record_claim_change(session, "review_released", item, reviewer)
    return item


def _record_claim_change(
    session: Session,
    kind: Literal["review_claimed", "review_released"],
    item: ReviewItem,
    reviewer: str,
) -> None:
    append_event(
        session,
        key=f"{kind}:{item.review_id}:{uuid.uuid4().hex}",
        kind=kind,
        actor=reviewer,
        run_id=item.run_id,
        review_id=item.review_id,
    )


# --- one item -----------------------------------------------------------------------------------


def run_timeline(session: Session, run_id: str) -> list[AuditEvent]:
    """Everything the audit log holds about a run, oldest first."""
    return events_for(session, run_id=run_id)
