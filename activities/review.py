"""Review activities: open an item, project a decision, record timeouts. Each is idempotent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from sqlmodel import Session
from temporalio import activity

from activities.deps import ActivityDeps
from activities.notify import ReviewNotifier
from activities.run_events import review_decided, review_opened, review_timed_out
from policies.effective import effective_for
from policies.models import ReviewTimeouts
from tether.contracts import (
    OpenReviewInput,
    RecordDecisionInput,
    ReviewNudgeInput,
    ReviewTicket,
)
from tether.core.digests import output_digest
from tether.store.audit import append_event
from tether.store.cache import record_review_verdict
from tether.store.examples import record_example
from tether.store.ledger import insert_once
from tether.store.reviews import ReviewItem, get_review
from tether.store.step_events import record_step_event

log = logging.getLogger(__name__)

DECISION_STATUS = {
    "approve": "approved",
    "reject": "rejected",
    "edit": "edited",
    "retry": "retried",
}


class ReviewActivities:
    def __init__(self, deps: ActivityDeps, notifier: ReviewNotifier) -> None:
        self.deps = deps
        self.notifier = notifier

    @activity.defn(name="tether.open_review")
    async def open_review(self, inp: OpenReviewInput) -> ReviewTicket:
        review = effective_for(self.deps.policy, inp.workflow).review
        expires_at = inp.opened_at + review.expires_after
        timeouts = review.timeouts
        due_at = inp.opened_at + (timeouts.default_after or review.expires_after)
        channel = review.slack_channel or self.deps.settings.slack_default_channel
        roles = list(review.roles)
        escalate_after = timeouts.escalate_after
        if inp.escalate:
            # Escalated by the confidence gate: to the escalation role (and channel) at once.
            if timeouts.escalate_to_role:
                roles = [timeouts.escalate_to_role]
            channel = timeouts.escalate_to_channel or channel
            escalate_after = None

        def _open(session: Session) -> ReviewItem:
            item = get_review(session, inp.review_id)
            if item is None:
                item = ReviewItem(
                    review_id=inp.review_id,
                    run_id=inp.run_id,
                    workflow=inp.workflow,
                    step=inp.step,
                    tenant=inp.tenant,
                    requester=inp.requester,
                    reason=inp.reason,
                    summary=inp.summary[:500],
                    input_preview=inp.input_preview,
                    output=inp.output,
                    raw_output=inp.raw_output,
                    output_schema=inp.output_schema,
                    output_model=inp.output_model,
                    output_digest=inp.output_digest,
                    confidence=inp.confidence.model_dump(mode="json") if inp.confidence else None,
                    confidence_score=inp.confidence.score if inp.confidence else None,
                    cost_usd=inp.cost_usd,
                    allowed_roles=roles,
                    escalated=inp.escalate,
                    opened_at=inp.opened_at,
                    due_at=due_at,
                    expires_at=expires_at,
                    slack_channel=channel,
                    prompt_version=inp.prompt_version,
                    model=inp.model,
                    step_input=inp.step_input,
                )
                insert_once(session, item)
                item = get_review(session, inp.review_id) or item
            # The step event before the audit head, as every transaction takes them: the other
            # order deadlocks with a step's hold on PostgreSQL.
            record_step_event(session, review_opened(inp, roles))
            _audit(
                session,
                "review_opened",
                inp.run_id,
                inp.review_id,
                actor="tether",
                detail={
                    "reason": inp.reason,
                    "step": inp.step,
                    "digest": inp.output_digest,
                    "confidence": item.confidence_score,
                    "cost_usd": inp.cost_usd,
                    "roles": roles,
                    "escalated": inp.escalate,
                },
            )
            return item

        item = await self.deps.in_session(_open)
        if item.slack_ts is None:
            posted = await self.notifier.review_opened(item)
            if posted is not None:
                posted_channel, ts = posted

                def _remember(session: Session) -> None:
                    row = get_review(session, inp.review_id)
                    if row is not None:
                        row.slack_channel, row.slack_ts = posted_channel, ts
                        session.add(row)

                await self.deps.in_session(_remember)
        return ReviewTicket(
            review_id=inp.review_id,
            allowed_roles=roles,
            expires_at=expires_at,
            remind_after=timeouts.remind_after,
            escalate_after=escalate_after,
            default_after=timeouts.default_after,
            default_action=timeouts.default_action,
        )

    @activity.defn(name="tether.record_decision")
    async def record_decision(self, inp: RecordDecisionInput) -> None:
        decision = inp.decision

        def _record(session: Session) -> ReviewItem | None:
            item = get_review(session, inp.review_id)
            if item is not None and item.decision is None:
                # A timeout's default action is not a reviewer's: the item shows it defaulted.
                timed_out = decision.channel == "timeout"
                item.status = "defaulted" if timed_out else DECISION_STATUS[decision.kind]
                item.decision = decision.kind
                item.decision_reason = decision.reason or decision.feedback
                item.decided_output = inp.final_output
                item.reviewer = decision.reviewer
                item.decided_at = inp.decided_at
                item.decided_via = decision.channel
                item.updated_at = inp.decided_at
                session.add(item)
                record_example(session, item)
                record_step_event(
                    session,
                    review_decided(
                        inp,
                        workflow=item.workflow,
                        tenant=item.tenant,
                        step=item.step,
                        state=item.status,
                    ),
                )
                if not timed_out:  # a reviewer's verdict on the answer: prefer or evict it
                    record_review_verdict(session, item, decision.kind, inp.final_output)
            _audit(
                session,
                "review_decided",
                inp.run_id,
                inp.review_id,
                actor=decision.reviewer,
                detail={
                    "decision": decision.kind,
                    "reason": decision.reason,
                    "channel": decision.channel,
                    "digest": decision.output_digest,
                    "retry_mode": decision.retry_mode,
                    "receipt": inp.receipt.model_dump(mode="json") if inp.receipt else None,
                    "edited_output_digest": (
                        output_digest(inp.final_output)
                        if decision.kind == "edit" and inp.final_output is not None
                        else None
                    ),
                },
            )
            return item

        item = await self.deps.in_session(_record)
        if item is not None:
            await self.notifier.review_decided(item)

    @activity.defn(name="tether.review_nudge")
    async def review_nudge(self, inp: ReviewNudgeInput) -> list[str]:
        """Record a fired timeout; return the roles now allowed to decide (escalation widens them)."""

        def _nudge(session: Session) -> tuple[ReviewItem | None, str | None]:
            item = get_review(session, inp.review_id)
            channel = None
            if item is not None:
                timeouts = effective_for(self.deps.policy, item.workflow).review.timeouts
                if inp.kind == "remind":
                    item.reminded = True
                elif inp.kind == "escalate":
                    item.escalated = True
                    if (
                        timeouts.escalate_to_role
                        and timeouts.escalate_to_role not in item.allowed_roles
                    ):
                        item.allowed_roles = [*item.allowed_roles, timeouts.escalate_to_role]
                    channel = timeouts.escalate_to_channel
                elif inp.kind == "default" and item.decision is None:
                    ends = inp.ends_run or _run_ends(item, timeouts)
                    if ends is not None:
                        # No decision will come: the run halts, so the item leaves the pending
                        # queue, saying why.
                        item.status = ends
                        item.decision_reason = inp.detail or f"no decision: the review {ends}"
                        item.updated_at = datetime.now(UTC)
                        record_step_event(session, review_timed_out(item, ends))
                session.add(item)
            _audit(
                session,
                f"review_{inp.kind}",
                inp.run_id,
                inp.review_id,
                actor="tether",
                detail={"detail": inp.detail},
            )
            return item, channel

        item, channel = await self.deps.in_session(_nudge)
        if item is None:
            return []
        await self.notifier.review_nudged(item, inp.kind, channel)
        return list(item.allowed_roles)


def _audit(
    session: Session,
    kind: str,
    run_id: str,
    review_id: str,
    *,
    actor: str,
    detail: dict[str, object],
) -> None:
    """Append ``kind`` for a review to the audit chain, once per review and kind (so a retried
    activity appends nothing twice)."""
    append_event(
        session,
        key=f"{kind}:{review_id}",
        kind=kind,
        actor=actor,
        run_id=run_id,
        review_id=review_id,
        detail=detail,
    )


def _run_ends(item: ReviewItem, timeouts: ReviewTimeouts) -> Literal["expired", "failed"] | None:
    """How a fired default timeout ends the run when the workflow did not say (a nudge from
    before ``ends_run``): the item expired, or the policy's default is to fail; None otherwise."""
    expires_at = item.expires_at
    if expires_at.tzinfo is None:  # SQLite hands datetimes back without their zone
        expires_at = expires_at.replace(tzinfo=UTC)
    if datetime.now(UTC) >= expires_at:
        return "expired"
    return "failed" if timeouts.default_action == "fail" else None
