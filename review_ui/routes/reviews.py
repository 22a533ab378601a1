"""``/api/reviews``: list, read, decide, claim and release review items as a reviewer.

Every call authenticates a reviewer (HTTP Basic, or the page session plus the CSRF header).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from policies.models import Reviewer
from review_ui.access import review_or_404, tenant_filter
from review_ui.deciding import DecisionRequest, decide, is_role_refusal
from review_ui.decisions import DecisionOutcome, decision_update_id
from review_ui.deps import ApiReviewer, Desk, SessionDep, read_apart
from review_ui.errors import error_responses
from review_ui.pii_reveal import shown_item
from tether.contracts import JsonObject, ReviewReason
from tether.store.engine import Session
from tether.store.queue import (
    PAGE_SIZE,
    ClaimFilter,
    ClaimRefused,
    QueueQuery,
    QueueSort,
    StatusFilter,
    claim,
    list_queue,
    release,
    run_timeline,
)
from tether.store.reviews import ReviewPublic, ReviewSummary

router = APIRouter(
    prefix="/api/reviews", tags=["reviews"], responses=error_responses(401, 413, 422)
)

MAX_PAGE = 100_000
"""The last page a caller may ask for: past it a list is refused (422), not computed."""


class ReviewList(BaseModel):
    items: list[ReviewSummary]
    total: int
    page: int
    per_page: int
    pages: int


class TimelineEvent(BaseModel):
    at: datetime
    kind: str
    actor: str
    review_id: str | None
    detail: JsonObject


class ReviewDetail(ReviewPublic):
    """The item as a reviewer reads it, with the run's timeline."""

    timeline: list[TimelineEvent]


class ClaimResult(BaseModel):
    review_id: str
    claimed_by: str | None


@router.get("", response_model=ReviewList, responses=error_responses(403))
def list_reviews(
    session: SessionDep,
    reviewer: ApiReviewer,
    workflow: str | None = None,
    status: StatusFilter = "pending",
    reason: ReviewReason | None = None,
    claimed: ClaimFilter = "any",
    sort: QueueSort = "due",
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    per_page: int = Query(default=PAGE_SIZE, ge=1, le=200),
) -> ReviewList:
    """Review items, filtered and paged (overdue first by default)."""
    query = QueueQuery(
        workflow=workflow,
        status=status,
        reason=reason,
        claimed=claimed,
        sort=sort,
        page=page,
        per_page=per_page,
        tenants=tenant_filter(reviewer),
    )
    result = list_queue(session, query, me=reviewer.name)
    return ReviewList(
        items=[ReviewSummary.model_validate(row, from_attributes=True) for row in result.rows],
        total=result.total,
        page=page,
        per_page=per_page,
        pages=result.pages,
    )


@router.get("/{review_id}", response_model=ReviewDetail, responses=error_responses(403, 404))
def get_review_item(
    review_id: str, session: SessionDep, reviewer: ApiReviewer, desk: Desk
) -> ReviewDetail:
    """One item with its output, schema, digest (to decide with) and the run's timeline.
    Personal data in the input and output are placeholders unless the reviewer holds a role in
    the workflow's ``pii.reveal_to_roles``."""
    item = review_or_404(session, review_id, reviewer)
    events = run_timeline(session, item.run_id)
    fields = {name: getattr(item, name) for name in ReviewPublic.model_fields}
    shown = shown_item(session, desk.settings, desk.policy, reviewer, item)
    fields |= shown.model_dump(include={"input_preview", "output", "raw_output", "decided_output"})
    timeline = [
        TimelineEvent(at=e.at, kind=e.kind, actor=e.actor, review_id=e.review_id, detail=e.detail)
        for e in events
    ]
    return ReviewDetail(**fields, timeline=timeline)


@router.post(
    "/{review_id}/decision",
    response_model=DecisionOutcome,
    responses={
        202: {"model": DecisionOutcome, "description": "Saved; delivered when a worker runs."},
        **error_responses(403, 404, 409),
    },
)
async def decide_review(
    review_id: str,
    body: DecisionRequest,
    desk: Desk,
    session: SessionDep,
    reviewer: ApiReviewer,
    idempotency_key: str | None = Header(default=None, max_length=120),
) -> JSONResponse:
    """Decide an item as the authenticated reviewer. The same Idempotency-Key is one decision."""
    item = await read_apart(session, review_or_404, review_id, reviewer)
    nonce = f"api-{reviewer.name}-{idempotency_key}" if idempotency_key else uuid.uuid4().hex
    outcome = await decide(
        desk, reviewer, item, body, channel="api", update_id=decision_update_id(review_id, nonce)
    )
    code = {"accepted": 200, "queued": 202}.get(outcome.state, 409)
    if outcome.state == "refused" and item.status == "pending" and is_role_refusal(reviewer, item):
        code = 403
    content = outcome.model_dump(mode="json")
    if code >= 400:  # an error like every other: ``detail`` says why, the outcome's fields too
        content["detail"] = outcome.message
    return JSONResponse(content, status_code=code)


@router.post(
    "/{review_id}/claim", response_model=ClaimResult, responses=error_responses(403, 404, 409)
)
def claim_review(review_id: str, session: SessionDep, reviewer: ApiReviewer) -> ClaimResult:
    """Claim an item; 409 when another reviewer holds it."""
    return _claim_change(session, review_id, reviewer, take=True)


@router.post(
    "/{review_id}/release", response_model=ClaimResult, responses=error_responses(403, 404, 409)
)
def release_review(review_id: str, session: SessionDep, reviewer: ApiReviewer) -> ClaimResult:
    """Release your claim on an item."""
    return _claim_change(session, review_id, reviewer, take=False)


def _claim_change(
    session: Session, review_id: str, reviewer: Reviewer, *, take: bool
) -> ClaimResult:
    name = reviewer.name
    review_or_404(session, review_id, reviewer)
    try:
        if take:
            item = claim(session, review_id, name, reviewer.roles)
        else:
            item = release(session, review_id, name)
    except ClaimRefused as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError:
        raise HTTPException(404, f"no review item {review_id}") from None
    return ClaimResult(review_id=review_id, claimed_by=item.claimed_by)
