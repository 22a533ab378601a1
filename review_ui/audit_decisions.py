"""Deciding an audit item (``audit_sample``): a verdict on an output a run already accepted.

No workflow waits for it, so nothing is sent to Temporal: the verdict is checked here with the
same rules as any decision (tenant, role, stale digest, reason for a rejection, a valid edit)
and recorded in the store, once, with its labelled example and audit event.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import ValidationError

from activities.llm_step.prompting import resolve_output_model
from policies.approval import EarlierDecision, SubmittedDecision, decision_problem
from policies.models import Reviewer
from review_ui.decisions import DecisionOutcome
from tether.contracts import Channel, DecisionKind, DecisionReceipt, JsonObject
from tether.core.digests import output_digest
from tether.store.audit_samples import decide_audit_sample
from tether.store.engine import session_scope
from tether.store.reviews import ReviewItem


def _edit_problem(item: ReviewItem, edited: JsonObject | None) -> str | None:
    if edited is None or item.output_model is None:
        return None
    try:
        resolve_output_model(item.output_model).model_validate(edited)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'output'}: {first['msg']}"
    return None


def audit_problem(
    reviewer: Reviewer,
    item: ReviewItem,
    *,
    kind: str,
    digest_shown: str,
    reason: str | None,
    edited_output: JsonObject | None,
) -> str | None:
    """Why ``reviewer`` cannot give this verdict on the audit ``item``, or None."""
    if not reviewer.sees_tenant(item.tenant):
        return f"{reviewer.name} may not decide reviews of tenant {item.tenant!r}"
    return decision_problem(
        review_id=item.review_id,
        workflow=item.workflow,
        reviewer=reviewer.name,
        reviewer_roles=reviewer.roles,
        allowed_roles=item.allowed_roles,
        requester=item.requester,
        already_decided=(
            None
            if item.decision is None
            else EarlierDecision(outcome=item.decision, reviewer=item.reviewer)
        ),
        digest_shown=digest_shown,
        digest_expected=item.output_digest,
        decision=SubmittedDecision(
            kind=kind,
            reason=reason,
            has_edited_output=edited_output is not None,
            edit_problem=_edit_problem(item, edited_output) if kind == "edit" else None,
        ),
        review_reason=item.reason,
        has_schema=item.output_schema is not None,
    )


async def decide_audit(
    database_url: str,
    reviewer: Reviewer,
    item: ReviewItem,
    *,
    kind: DecisionKind,
    digest_shown: str,
    reason: str | None,
    edited_output: JsonObject | None,
    channel: Channel,
    update_id: str,
) -> DecisionOutcome:
    """Check and record ``reviewer``'s verdict on the audit ``item``."""
    problem = audit_problem(
        reviewer,
        item,
        kind=kind,
        digest_shown=digest_shown,
        reason=reason,
        edited_output=edited_output,
    )
    if problem is not None:
        return DecisionOutcome(
            accepted=False, message=problem, state="refused", update_id=update_id
        )
    decided_at = datetime.now(UTC)

    def _record() -> ReviewItem | None:
        with session_scope(database_url) as session:
            return decide_audit_sample(
                session,
                item.review_id,
                kind=kind,
                reviewer=reviewer.name,
                reason=reason,
                edited_output=edited_output,
                channel=channel,
                decided_at=decided_at,
            )

    decided = await asyncio.to_thread(_record)
    if decided is None:
        return DecisionOutcome(
            accepted=False,
            message=f"review {item.review_id} was already decided",
            state="refused",
            update_id=update_id,
        )
    final = decided.decided_output if kind == "edit" else decided.output
    receipt = DecisionReceipt(
        review_id=item.review_id,
        kind=kind,
        reviewer=reviewer.name,
        decided_at=decided_at,
        output_digest=output_digest(final) if kind == "edit" else item.output_digest,
    )
    return DecisionOutcome(
        accepted=True,
        receipt=receipt,
        message=f"audit recorded: {kind}; the run had already gone on",
        state="accepted",
        update_id=update_id,
    )
