"""The JSON API for integrations: start runs, read their status, list and decide reviews.

Every call authenticates a reviewer (HTTP Basic, or the page session plus the CSRF header).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from policies.models import Reviewer
from review_ui.auth import ApiReviewer
from review_ui.context import Desk
from review_ui.deciding import DecisionRequest, decide, is_role_refusal
from review_ui.decisions import DecisionOutcome, decision_update_id
from review_ui.queue import (
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
from tether import client as runs_client
from tether.client import new_run_id, parse_run_input, run_status
from tether.contracts import JsonObject, ReviewReason
from tether.core.errors import InputError, ServerUnreachableError
from tether.store.engine import session_scope
from tether.store.reviews import ReviewItem, get_review

runs = APIRouter(prefix="/api/runs", tags=["runs"])
reviews = APIRouter(prefix="/api/reviews", tags=["reviews"])

_STATUS_DEADLINE_S = 5.0


# --- runs -------------------------------------------------------------------------------------------


class StartRun(BaseModel):
    workflow: str = Field(description="A workflow from the catalog, e.g. support_triage.")
    input: JsonObject = Field(description="The workflow's input, validated against its schema.")
    run_id: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")


class RunStarted(BaseModel):
    run_id: str
    workflow: str
    status_url: str


@runs.post("", status_code=status.HTTP_201_CREATED, response_model=RunStarted)
async def start_run(body: StartRun, desk: Desk, reviewer: ApiReviewer) -> RunStarted:
    """Start a run; the input is checked exactly as ``tether run`` checks it."""
    from workflows.catalog import CATALOG

    if body.workflow not in CATALOG:
        known = ", ".join(sorted(CATALOG))
        raise HTTPException(400, f"unknown workflow {body.workflow!r}; known: {known}")
    try:
        payload = parse_run_input(body.workflow, json.dumps(body.input))
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    # The caller is the requester unless the input names one: nobody approves their own run.
    if "requester" in type(payload).model_fields and getattr(payload, "requester", None) is None:
        payload = payload.model_copy(update={"requester": reviewer.name})
    client = await _client(desk)
    run_id = body.run_id or new_run_id(body.workflow)
    try:
        await runs_client.start_run(client, desk.settings, body.workflow, payload, run_id=run_id)
    except WorkflowAlreadyStartedError:
        raise HTTPException(409, f"a run with id {run_id!r} already exists") from None
    return RunStarted(run_id=run_id, workflow=body.workflow, status_url=f"/api/runs/{run_id}")


@runs.get("/{run_id}")
async def get_run(run_id: str, desk: Desk, reviewer: ApiReviewer) -> dict[str, Any]:
    """The run's state, steps with confidence, cost and pending decision (as ``tether status``)."""
    client = await _client(desk)
    try:
        return await asyncio.wait_for(run_status(desk.settings, run_id, client), _STATUS_DEADLINE_S)
    except InputError as exc:
        raise HTTPException(404, str(exc)) from None
    except TimeoutError:
        raise HTTPException(503, "the run did not answer: no worker is running") from None


# --- reviews ------------------------------------------------------------------------------------------


class ReviewSummary(BaseModel):
    """The API's view of a queue row (read straight from ``QueueRow``'s attributes)."""

    model_config = ConfigDict(from_attributes=True)

    review_id: str
    run_id: str
    workflow: str
    step: str
    reason: str
    summary: str
    status: str
    confidence_score: float | None
    cost_usd: float
    claimed_by: str | None
    opened_at: datetime
    due_at: datetime | None
    decision: str | None
    reviewer: str | None


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


class ReviewDetail(BaseModel):
    review_id: str
    run_id: str
    workflow: str
    step: str
    tenant: str
    requester: str | None
    reason: str
    summary: str
    status: str
    input_preview: JsonObject
    output: JsonObject | None
    raw_output: str | None
    output_schema: JsonObject | None
    output_digest: str
    confidence: JsonObject | None
    cost_usd: float
    allowed_roles: list[str]
    escalated: bool
    claimed_by: str | None
    opened_at: datetime
    due_at: datetime | None
    expires_at: datetime
    decision: str | None
    decision_reason: str | None
    decided_output: JsonObject | None
    reviewer: str | None
    decided_at: datetime | None
    decided_via: str | None
    timeline: list[TimelineEvent]


@reviews.get("", response_model=ReviewList)
def list_reviews(
    desk: Desk,
    reviewer: ApiReviewer,
    workflow: str | None = None,
    status: StatusFilter = "pending",
    reason: ReviewReason | None = None,
    claimed: ClaimFilter = "any",
    sort: QueueSort = "due",
    page: int = Query(default=1, ge=1),
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
    )
    with session_scope(desk.database_url) as session:
        result = list_queue(session, query, me=reviewer.name)
    return ReviewList(
        items=[ReviewSummary.model_validate(row) for row in result.rows],
        total=result.total,
        page=page,
        per_page=per_page,
        pages=result.pages,
    )


@reviews.get("/{review_id}", response_model=ReviewDetail)
def get_review_item(review_id: str, desk: Desk, reviewer: ApiReviewer) -> ReviewDetail:
    """One item with its output, schema, digest (to decide with) and the run's timeline."""
    with session_scope(desk.database_url) as session:
        item = _item_or_404(session, review_id)
        events = run_timeline(session, item.run_id)
    fields = {name: getattr(item, name) for name in ReviewDetail.model_fields if name != "timeline"}
    timeline = [
        TimelineEvent(at=e.at, kind=e.kind, actor=e.actor, review_id=e.review_id, detail=e.detail)
        for e in events
    ]
    return ReviewDetail(**fields, timeline=timeline)


@reviews.post(
    "/{review_id}/decision",
    response_model=DecisionOutcome,
    responses={
        202: {"model": DecisionOutcome, "description": "Saved; delivered when a worker runs."},
        403: {"model": DecisionOutcome, "description": "Your roles may not decide this item."},
        409: {"model": DecisionOutcome, "description": "Refused: the message says why."},
    },
)
async def decide_review(
    review_id: str,
    body: DecisionRequest,
    desk: Desk,
    reviewer: ApiReviewer,
    idempotency_key: str | None = Header(default=None, max_length=120),
) -> JSONResponse:
    """Decide an item as the authenticated reviewer. The same Idempotency-Key is one decision."""

    def _load() -> ReviewItem:
        with session_scope(desk.database_url) as session:
            return _item_or_404(session, review_id)

    item = await asyncio.to_thread(_load)
    nonce = f"api-{reviewer.name}-{idempotency_key}" if idempotency_key else uuid.uuid4().hex
    outcome = await decide(
        desk, reviewer, item, body, channel="api", update_id=decision_update_id(review_id, nonce)
    )
    code = {"accepted": 200, "queued": 202}.get(outcome.state, 409)
    if outcome.state == "refused" and item.status == "pending" and is_role_refusal(reviewer, item):
        code = 403
    return JSONResponse(outcome.model_dump(mode="json"), status_code=code)


class ClaimResult(BaseModel):
    review_id: str
    claimed_by: str | None


@reviews.post("/{review_id}/claim", response_model=ClaimResult)
def claim_review(review_id: str, desk: Desk, reviewer: ApiReviewer) -> ClaimResult:
    """Claim an item; 409 when another reviewer holds it."""
    return _claim_change(desk, review_id, reviewer, take=True)


@reviews.post("/{review_id}/release", response_model=ClaimResult)
def release_review(review_id: str, desk: Desk, reviewer: ApiReviewer) -> ClaimResult:
    """Release your claim on an item."""
    return _claim_change(desk, review_id, reviewer, take=False)


def _claim_change(desk: Desk, review_id: str, reviewer: Reviewer, *, take: bool) -> ClaimResult:
    name = reviewer.name
    try:
        with session_scope(desk.database_url) as session:
            if take:
                item = claim(session, review_id, name, reviewer.roles)
            else:
                item = release(session, review_id, name)
            return ClaimResult(review_id=review_id, claimed_by=item.claimed_by)
    except ClaimRefused as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError:
        raise HTTPException(404, f"no review item {review_id}") from None


# --- shared ---------------------------------------------------------------------------------------


async def _client(desk: Desk) -> Client:
    try:
        return await desk.temporal.get()
    except ServerUnreachableError as exc:
        raise HTTPException(503, str(exc)) from None


def _item_or_404(session: Any, review_id: str) -> ReviewItem:
    item = get_review(session, review_id)
    if item is None:
        raise HTTPException(404, f"no review item {review_id}")
    return item
