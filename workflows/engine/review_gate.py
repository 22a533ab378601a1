"""The durable human review gate: open a review, wait for the decision, and the timers that run
while it waits (remind, escalate, the policy's default action, expiry)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.review import ReviewActivities
    from policies.values import ConfidenceReport
    from tether.contracts import (
        DecisionReceipt,
        JsonObject,
        OpenReviewInput,
        PendingDecision,
        RecordDecisionInput,
        ReviewDecision,
        ReviewNudgeInput,
        ReviewReason,
    )
    from tether.core.digests import output_digest
    from workflows.engine.lifecycle import RunLifecycle
    from workflows.engine.state import (
        ESCALATE_AT_ONCE,
        SHORT_ACTIVITY,
        SHORT_ACTIVITY_RETRY,
        PendingReview,
    )
    from workflows.engine.text import human_duration
    from workflows.steps import RunHalted


@dataclass(frozen=True)
class LabelledStep:
    """What a review of a model step's output keeps for its labelled example."""

    prompt_version: str
    model: str
    step_input: dict[str, str]


class ReviewGate(RunLifecycle):
    """Asks a human and waits, durably, however long the policy allows."""

    async def ask_approval(
        self,
        *,
        step: str,
        summary: str,
        request: JsonObject,
        reason: ReviewReason = "escalated",
    ) -> ReviewDecision:
        """Ask a human to approve or reject ``request``, and wait for the answer.

        The review opens in the queue (and Slack) with ``summary`` as its one line and
        ``request`` as what is being approved; the reviewer may only approve or reject it. The
        policy's review timeouts apply while it waits: reminders, escalation, a default action.

        Usage, inside ``run`` after ``self.begin(...)``::

            decision = await self.ask_approval(
                step="guard",
                summary="document of 120000 characters is over the 50000 limit",
                request={"original_chars": 120000, "limit": 50000},
            )
            if decision.kind == "reject":
                raise RunHalted("blocked", "guard", f"rejected: {decision.reason}")

        Args:
            step: The name the review is filed under (one review id per call).
            summary: What the reviewer is asked, in one line.
            request: What is being approved, shown to the reviewer; its digest guards against
                a stale form.
            reason: Why a human is asked (``escalated``, ``over_budget``...).

        Returns:
            The decision, ``approve`` or ``reject`` (a timeout's default action included).

        Raises:
            RunHalted: no decision came before the review expired, or the policy's default is to
                fail the run.
        """
        decision, _ = await self._review(
            step_name=step,
            reason=reason,
            summary=summary,
            output=request,
            raw_output=None,
            digest=output_digest(request),
            output_model=None,
            confidence=None,
            approval_only=True,
        )
        return decision

    async def _review(
        self,
        *,
        step_name: str,
        reason: ReviewReason,
        summary: str,
        output: JsonObject | None,
        raw_output: str | None,
        digest: str,
        output_model: type[BaseModel] | None,
        confidence: ConfidenceReport | None,
        approval_only: bool = False,
        escalate: bool = False,
        labelled: LabelledStep | None = None,
    ) -> tuple[ReviewDecision, DecisionReceipt]:
        self._reviews_opened += 1
        # Runs from before the patch opened an escalated step as an ordinary review; only an
        # escalated review asks, so every other history stays as it was.
        escalate = escalate and workflow.patched(ESCALATE_AT_ONCE)
        review_id = f"{self.run_id}:{step_name}:{self._reviews_opened}"
        opened_at = workflow.now()
        ticket = await workflow.execute_activity_method(
            ReviewActivities.open_review,
            OpenReviewInput(
                review_id=review_id,
                run_id=self.run_id,
                workflow=self._status.workflow,
                step=step_name,
                tenant=self._context.tenant,
                requester=self._context.requester,
                reason=reason,
                summary=summary,
                input_preview=self._context.input_preview,
                output=output,
                raw_output=raw_output,
                output_schema=output_model.model_json_schema() if output_model else None,
                output_model=(
                    f"{output_model.__module__}:{output_model.__qualname__}"
                    if output_model
                    else None
                ),
                output_digest=digest,
                confidence=confidence,
                cost_usd=self._status.cost_usd,
                opened_at=opened_at,
                escalate=escalate,
                # What the item's labelled example keeps of a model step (prompt, model, input).
                prompt_version=labelled.prompt_version if labelled else None,
                model=labelled.model if labelled else None,
                step_input=labelled.step_input if labelled else None,
            ),
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=SHORT_ACTIVITY_RETRY,
        )
        pending = PendingReview(
            ticket=ticket,
            step=step_name,
            reason=reason,
            digest=digest,
            requester=self._context.requester,
            output_model=output_model,
            approval_only=approval_only,
            allowed_roles=list(ticket.allowed_roles),
        )
        self._pending = pending
        self._status.pending = PendingDecision(
            review_id=review_id,
            step=step_name,
            reason=reason,
            output_digest=digest,
            allowed_roles=pending.allowed_roles,
            expires_at=ticket.expires_at,
        )
        self._set_state("awaiting_review")
        try:
            await self._await_decision(pending, opened_at)
        finally:
            self._pending = None
            self._status.pending = None
            self._set_state("running")
        assert pending.decision is not None and pending.receipt is not None
        final_output = pending.decision.edited_output if pending.decision.kind == "edit" else output
        await workflow.execute_activity_method(
            ReviewActivities.record_decision,
            RecordDecisionInput(
                review_id=review_id,
                run_id=self.run_id,
                decision=pending.decision,
                decided_at=pending.receipt.decided_at,
                final_output=final_output,
                receipt=pending.receipt,
            ),
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=SHORT_ACTIVITY_RETRY,
        )
        return pending.decision, pending.receipt

    async def _await_decision(self, pending: PendingReview, opened_at: datetime) -> None:
        ticket = pending.ticket
        nudges = [
            (after, kind)
            for after, kind in (
                (ticket.remind_after, "remind"),
                (ticket.escalate_after, "escalate"),
                (ticket.default_after, "default"),
            )
            if after is not None
        ]
        nudges.append((ticket.expires_at - opened_at, "expire"))
        nudges.sort(key=lambda pair: pair[0])
        for after, kind in nudges:
            remaining = (opened_at + after) - workflow.now()
            if remaining > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: pending.decision is not None, timeout=remaining
                    )
            if pending.decision is not None:
                return
            await self._nudge(pending, kind, after)
            if pending.decision is not None:
                return
        await workflow.wait_condition(lambda: pending.decision is not None)

    async def _nudge(self, pending: PendingReview, kind: str, after: timedelta) -> None:
        ticket = pending.ticket
        waited = human_duration(after)
        if kind == "expire" or (kind == "default" and ticket.default_action == "fail"):
            ends: Literal["expired", "failed"] = "expired" if kind == "expire" else "failed"
            await self._record_nudge(
                ticket.review_id,
                "default",
                f"no decision within {waited}: "
                + ("the review expired" if ends == "expired" else "policy default is fail")
                + "; the run fails",
                ends_run=ends,
            )
            raise RunHalted("expired", pending.step, f"no decision within {waited}")
        if kind == "default":
            action = "approve" if ticket.default_action == "approve" else "reject"
            no_default_approve = ("invalid_output", "provider_failure", "prompt_injection")
            if pending.reason in no_default_approve and action == "approve":
                action = "reject"
            await self._record_nudge(
                ticket.review_id, "default", f"no decision after {waited}: default {action}"
            )
            decision = ReviewDecision(
                review_id=ticket.review_id,
                kind=action,
                reviewer="tether (timeout policy)",
                reviewer_roles=[],
                output_digest=pending.digest,
                reason=f"no decision within {waited}; policy default is {action}",
                channel="timeout",
            )
            pending.decision = decision
            pending.receipt = DecisionReceipt(
                review_id=ticket.review_id,
                kind=decision.kind,
                reviewer=decision.reviewer,
                decided_at=workflow.now(),
                output_digest=pending.digest,
            )
            self._decided[ticket.review_id] = pending.receipt
            return
        roles = await self._record_nudge(ticket.review_id, kind, f"no decision after {waited}")
        if kind == "escalate" and roles:
            pending.allowed_roles = roles
            if self._status.pending is not None:
                self._status.pending.allowed_roles = roles

    async def _record_nudge(
        self,
        review_id: str,
        kind: str,
        detail: str,
        ends_run: Literal["expired", "failed"] | None = None,
    ) -> list[str]:
        return await workflow.execute_activity_method(
            ReviewActivities.review_nudge,
            ReviewNudgeInput(
                review_id=review_id,
                run_id=self.run_id,
                kind=kind,
                detail=detail,
                ends_run=ends_run,
            ),
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=SHORT_ACTIVITY_RETRY,
        )
