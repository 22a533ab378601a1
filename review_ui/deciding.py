"""One decision path for the web form and the JSON API: identity from auth, checks, delivery.

The workflow's ``decide`` validator is the authority; the checks here only answer sooner (and
keep a viewer's click out of the outbox). Reviewer name and roles always come from
authentication, never from the request body.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.approval import EarlierDecision, decision_problem, lacks_role, offered_decisions
from policies.models import Reviewer
from review_ui.audit_decisions import decide_audit
from review_ui.context import ReviewDesk
from review_ui.decisions import (
    DecisionOutcome,
    intent_exists,
    keep_decision,
    submit_decision,
)
from review_ui.pii_reveal import redacted_decision
from tether.contracts import Channel, DecisionKind, JsonObject, RetryMode, ReviewDecision
from tether.core.errors import ServerUnreachableError
from tether.run_input import check_depth
from tether.store.audit_samples import AUDIT_SAMPLE
from tether.store.reviews import ReviewItem

ALL_KINDS: tuple[DecisionKind, ...] = ("approve", "edit", "retry", "reject")


class DecisionRequest(BaseModel):
    """A decision as a reviewer submits it (the API body; the web form maps onto it).

    Who decides is never part of it: reviewer and roles come from authentication, and a body
    that tries to name them is refused (unknown fields are errors).
    """

    model_config = ConfigDict(extra="forbid")

    kind: DecisionKind
    output_digest: str = Field(
        min_length=1, description="Digest of the output you saw (from GET /api/reviews/{id})."
    )
    reason: str | None = Field(default=None, max_length=2000)
    edited_output: JsonObject | None = None
    retry_mode: RetryMode | None = None
    feedback: str | None = Field(default=None, max_length=4000)

    # Before any re-encoding: deep nesting is a 422, never a RecursionError (500).
    _edited_depth = field_validator("edited_output", mode="before")(check_depth)


def allowed_kinds(item: ReviewItem) -> list[DecisionKind]:
    """The decisions this item offers (the workflow's validator refuses the rest).

    Only a request (``ask_approval``) has neither a schema nor a provider failure behind it.
    """
    no_schema = item.output_schema is None
    offered = offered_decisions(
        item.reason,
        approval_only=no_schema and item.reason != "provider_failure",
        has_schema=not no_schema,
    )
    return [kind for kind in ALL_KINDS if kind in offered]


def may_decide(reviewer: Reviewer, item: ReviewItem) -> str | None:
    """Why ``reviewer`` cannot decide ``item`` now, or None when they can."""
    if not reviewer.sees_tenant(item.tenant):
        return f"{reviewer.name} may not decide reviews of tenant {item.tenant!r}"
    earlier = (
        None
        if item.status == "pending"
        else EarlierDecision(outcome=item.decision or item.status, reviewer=item.reviewer or None)
    )
    return decision_problem(
        review_id=item.review_id,
        workflow=item.workflow,
        reviewer=reviewer.name,
        reviewer_roles=reviewer.roles,
        allowed_roles=item.allowed_roles,
        requester=item.requester,
        already_decided=earlier,
    )


def is_role_refusal(reviewer: Reviewer, item: ReviewItem) -> bool:
    return lacks_role(reviewer.roles, item.allowed_roles)


def decision_for(
    reviewer: Reviewer, item: ReviewItem, request: DecisionRequest, *, channel: Channel
) -> ReviewDecision:
    """The decision ``reviewer`` (from authentication) makes on ``item`` with ``request``."""
    return ReviewDecision(
        review_id=item.review_id,
        kind=request.kind,
        reviewer=reviewer.name,
        reviewer_roles=list(reviewer.roles),
        output_digest=request.output_digest,
        reason=(request.reason or "").strip() or None,
        edited_output=request.edited_output,
        retry_mode=request.retry_mode,
        feedback=(request.feedback or "").strip() or None,
        channel=channel,
    )


async def decide(
    desk: ReviewDesk,
    reviewer: Reviewer,
    item: ReviewItem,
    request: DecisionRequest,
    *,
    channel: Channel,
    update_id: str,
) -> DecisionOutcome:
    """Check, write to the outbox and send ``request`` as ``reviewer``'s decision on ``item``."""
    if item.reason == AUDIT_SAMPLE:  # no run waits: recorded in the store only
        # What the reviewer typed is redacted like any decision's before it is stored.
        typed = await asyncio.to_thread(
            redacted_decision,
            desk.database_url,
            desk.settings,
            desk.policy,
            item,
            decision_for(reviewer, item, request, channel=channel),
        )
        return await decide_audit(
            desk.database_url,
            reviewer,
            item,
            kind=request.kind,
            digest_shown=request.output_digest,
            reason=typed.reason,
            edited_output=typed.edited_output,
            channel=channel,
            update_id=update_id,
        )
    # A resubmitted form goes straight to the outbox, which answers with the first outcome.
    resubmitted = await asyncio.to_thread(intent_exists, desk.database_url, update_id)
    problem = None if resubmitted else may_decide(reviewer, item)
    if problem is None and not resubmitted and request.kind not in allowed_kinds(item):
        problem = (
            f"this item offers only {', '.join(allowed_kinds(item))}; "
            f"{request.kind} is not one of them"
        )
    if problem is not None:
        return DecisionOutcome(
            accepted=False, message=problem, state="refused", update_id=update_id
        )
    decision = decision_for(reviewer, item, request, channel=channel)
    decision = await asyncio.to_thread(
        redacted_decision, desk.database_url, desk.settings, desk.policy, item, decision
    )
    try:
        client = await desk.temporal.get()
    except ServerUnreachableError as exc:
        return await keep_decision(
            decision,
            run_id=item.run_id,
            update_id=update_id,
            database_url=desk.database_url,
            why=str(exc),
        )
    return await submit_decision(
        client, decision, run_id=item.run_id, update_id=update_id, database_url=desk.database_url
    )
