"""The reviewer's HTML pages: the queue, an item's detail page, its decision forms, claims."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from policies.models import Reviewer
from review_ui.access import review_or_404, tenant_filter, visible_review
from review_ui.auth import PageUser
from review_ui.context import ReviewDesk
from review_ui.deciding import allowed_kinds, decide, may_decide
from review_ui.decision_form import FormState, edit_prefill, read_decision_form
from review_ui.decisions import decision_update_id
from review_ui.deps import CurrentUser, Desk, SessionDep, read_apart
from review_ui.pii_reveal import ShownItem, shown_item
from review_ui.rendering import Flash, form_text, read_flash, render, safe_next, write_flash
from review_ui.run_state import run_snapshot
from review_ui.schema_form import build_fields
from tether.store.audit import AuditEvent
from tether.store.engine import Session
from tether.store.outbox import find_intent, pending_intents
from tether.store.queue import (
    REASONS,
    STATUSES,
    ClaimFilter,
    ClaimRefused,
    QueueQuery,
    QueueSort,
    claim,
    list_queue,
    release,
    run_timeline,
    workflow_counts,
)
from tether.store.reviews import DecisionIntent, ReviewItem, get_review

router = APIRouter(include_in_schema=False)


# --- the queue ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def queue_page(
    request: Request,
    desk: Desk,
    session: SessionDep,
    user: CurrentUser,
    workflow: str | None = None,
    status: str = "pending",
    reason: str | None = None,
    claimed: ClaimFilter = "any",
    sort: QueueSort = "due",
    page: int = Query(default=1, ge=1, le=100_000),
) -> Response:
    query = QueueQuery(
        workflow=workflow or None,
        status=status if status in (*STATUSES, "all") else "pending",
        reason=reason if reason in REASONS else None,
        claimed=claimed,
        sort=sort,
        page=page,
        tenants=tenant_filter(user.reviewer),
    )
    result = list_queue(session, query, me=user.reviewer.name)
    workflows = workflow_counts(session, query.status, query.tenants)
    context = {
        "user": user,
        "page": result,
        "query": query,
        "workflows": workflows,
        "statuses": STATUSES,
        "reasons": REASONS,
        "now": datetime.now(UTC),
        "flash": read_flash(desk, request),
        "self_url": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        "link": lambda **changes: _queue_link(query, **changes),
    }
    return render(desk, request, "queue.html", context, clear_flash=True)


# --- one item ---------------------------------------------------------------------------------------


@dataclass
class DetailView:
    """Everything the detail page shows besides the forms."""

    item: ReviewItem
    timeline: list[AuditEvent]
    intent: DecisionIntent | None = None
    waiting: list[DecisionIntent] = field(default_factory=list)
    shown: ShownItem | None = None
    """The output and input as this reviewer may see them (placeholders or values)."""


def _load_detail(
    session: Session, review_id: str, update_id: str | None, reviewer: Reviewer, desk: ReviewDesk
) -> DetailView:
    item = review_or_404(session, review_id, reviewer)
    return DetailView(
        shown=shown_item(session, desk.settings, desk.policy, reviewer, item),
        item=item,
        timeline=run_timeline(session, item.run_id),
        intent=find_intent(session, update_id, review_id=review_id) if update_id else None,
        waiting=pending_intents(session, review_id),
    )


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
async def review_page(
    request: Request,
    desk: Desk,
    session: SessionDep,
    user: CurrentUser,
    review_id: str,
    decision: str | None = None,
) -> Response:
    view = await read_apart(session, _load_detail, review_id, decision, user.reviewer, desk)
    notice = _intent_notice(view.intent)
    return _render_detail(desk, request, user, view, notice=notice)


@router.get("/reviews/{review_id}/outcome", response_class=HTMLResponse)
async def outcome_fragment(
    request: Request, desk: Desk, session: SessionDep, user: CurrentUser, review_id: str
) -> Response:
    view = await read_apart(session, _load_detail, review_id, None, user.reviewer, desk)
    run = await run_snapshot(desk, view.item.run_id) if view.item.status != "pending" else None
    context = {"item": view.item, "waiting": view.waiting, "run": run, "shown": view.shown}
    return render(desk, request, "_outcome.html", context)


@router.post("/reviews/{review_id}/decide", response_class=HTMLResponse)
async def decide_from_form(
    request: Request, desk: Desk, session: SessionDep, user: CurrentUser, review_id: str
) -> Response:
    form = await request.form()
    view = await read_apart(session, _load_detail, review_id, None, user.reviewer, desk)
    item = view.item
    decision = read_decision_form(form, item)
    if isinstance(decision, FormState):
        return _render_detail(desk, request, user, view, decision)
    nonce = form_text(form, "nonce") or secrets.token_urlsafe(12)
    outcome = await decide(
        desk,
        user.reviewer,
        item,
        decision,
        channel="web",
        update_id=decision_update_id(review_id, nonce),
    )
    if outcome.state == "refused":
        view = await read_apart(session, _load_detail, review_id, None, user.reviewer, desk)
        refused = FormState(409, ("error", _refusal_notice(outcome.message)))
        return _render_detail(desk, request, user, view, refused)
    if outcome.state == "accepted":
        await _until_recorded(session, review_id)
    target = f"/reviews/{review_id}?decision={outcome.update_id}"
    return RedirectResponse(target, status_code=303)


async def _until_recorded(session: Session, review_id: str, within_s: float = 1.5) -> None:
    # The run records a taken decision in the store right after taking it; waiting a moment
    # here means the page the reviewer lands on already shows it (else the page polls).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        if await read_apart(session, _review_status, review_id) != "pending":
            return
        await asyncio.sleep(0.05)


def _review_status(session: Session, review_id: str) -> str | None:
    item = get_review(session, review_id)
    return item.status if item else None


@router.post("/reviews/{review_id}/claim")
async def claim_item(
    request: Request, desk: Desk, session: SessionDep, user: CurrentUser, review_id: str
) -> Response:
    return await _change_claim(request, desk, session, user, review_id, take=True)


@router.post("/reviews/{review_id}/release")
async def release_item(
    request: Request, desk: Desk, session: SessionDep, user: CurrentUser, review_id: str
) -> Response:
    return await _change_claim(request, desk, session, user, review_id, take=False)


async def _change_claim(
    request: Request,
    desk: ReviewDesk,
    session: Session,
    user: PageUser,
    review_id: str,
    *,
    take: bool,
) -> Response:
    form = await request.form()
    target = safe_next(form_text(form, "next") or f"/reviews/{review_id}")

    def _apply() -> tuple[str, str]:  # committed by the session dependency, before the redirect
        if visible_review(session, review_id, user.reviewer) is None:
            raise LookupError(review_id)
        if take:
            claim(session, review_id, user.reviewer.name, user.reviewer.roles)
            return "ok", "You claimed this item; other reviewers see it as yours."
        release(session, review_id, user.reviewer.name)
        return "ok", "You released this item."

    try:
        flash = await asyncio.to_thread(_apply)
    except ClaimRefused as exc:
        flash = ("error", f"Not {'claimed' if take else 'released'}: {exc}.")
    except LookupError:
        raise HTTPException(404, f"no review item {review_id}") from None
    response = RedirectResponse(target, status_code=303)
    write_flash(desk, response, flash)
    return response


# --- rendering --------------------------------------------------------------------------------------


def _render_detail(
    desk: ReviewDesk,
    request: Request,
    user: PageUser,
    view: DetailView,
    form: FormState | None = None,
    *,
    notice: Flash | None = None,
) -> Response:
    form = form or FormState(notice=notice)
    item = view.item
    kinds = allowed_kinds(item)
    fields = form.fields
    if fields is None and "edit" in kinds and item.output_schema is not None:
        fields = build_fields(item.output_schema, edit_prefill(item))
    problem = may_decide(user.reviewer, item) if item.status == "pending" else None
    context = {
        "user": user,
        "item": item,
        "view": view,
        "kinds": kinds,
        "can_decide": item.status == "pending" and problem is None,
        "problem": problem,
        "fields": fields or [],
        "nonces": {kind: secrets.token_urlsafe(12) for kind in kinds},
        "open_form": form.open_form,
        "submitted": form.submitted,
        "field_errors": form.field_errors,
        "notice": form.notice or read_flash(desk, request),
        "now": datetime.now(UTC),
        "confidence": item.confidence or {},
        "shown": view.shown,
    }
    status_code = form.status_code
    return render(desk, request, "detail.html", context, status_code=status_code, clear_flash=True)


def _queue_link(query: QueueQuery, **changes: object) -> str:
    params: dict[str, object] = {
        "workflow": query.workflow,
        "status": query.status,
        "reason": query.reason,
        "claimed": query.claimed,
        "sort": query.sort,
        "page": query.page,
    }
    params.update(changes)
    return "/?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _intent_notice(intent: DecisionIntent | None) -> Flash | None:
    if intent is None:
        return None
    if intent.status == "delivered":
        return "ok", "Your decision was taken by the run."
    if intent.status == "refused":
        return "error", _refusal_notice(intent.last_error or "the run refused the decision")
    return "wait", (
        "Your decision is saved and will reach the run as soon as a worker is running. "
        "This page shows the outcome once it does."
    )


def _refusal_notice(message: str) -> str:
    return f"Your decision was not taken: {message}."
