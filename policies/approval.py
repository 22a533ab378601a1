"""Whether a reviewer's decision on a review may be taken: one set of refusal rules.

The workflow's ``decide`` validator and handler ask it with everything the run knows; the review
UI's pre-check asks it with what the queue row knows (who decided already, roles, requester), so
a reviewer reads the same refusal in both places. Pure: plain values in, a sentence or None out.

Usage::

    problem = decision_problem(
        review_id=item.review_id,
        workflow=item.workflow,
        reviewer="bob",
        reviewer_roles=["reviewer"],
        allowed_roles=item.allowed_roles,
        requester=item.requester,
    )
    if problem is not None:
        refuse(problem)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EarlierDecision:
    """The decision a review already has: only the first decision is ever taken."""

    outcome: str
    """The decision kind (``approve``...), or the item's status when its kind is unknown."""
    reviewer: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class SubmittedDecision:
    """What the reviewer asks for, as far as the rules need it."""

    kind: str
    """``approve``, ``edit``, ``retry`` or ``reject``."""
    reason: str | None = None
    retry_mode: str | None = None
    feedback: str | None = None
    has_edited_output: bool = False
    edit_problem: str | None = None
    """Why the edited output does not validate against the step's output model, if it does not."""


@dataclass(frozen=True)
class Expiry:
    """When the review stops taking decisions, and the time now (``workflow.now()`` in a run)."""

    expires_at: datetime
    now: datetime


def decision_problem(
    *,
    review_id: str,
    workflow: str,
    reviewer: str,
    reviewer_roles: Collection[str],
    allowed_roles: Collection[str],
    requester: str | None,
    already_decided: EarlierDecision | None = None,
    waiting: bool = True,
    expiry: Expiry | None = None,
    digest_shown: str | None = None,
    digest_expected: str | None = None,
    decision: SubmittedDecision | None = None,
    review_reason: str | None = None,
    approval_only: bool = False,
    has_schema: bool = True,
) -> str | None:
    """Why ``reviewer`` may not take this decision on review ``review_id``, or None if they may.

    Args:
        review_id: The review asked about.
        workflow: The workflow type, named in the role refusal.
        reviewer: Who decides (from authentication, never from a request body).
        reviewer_roles: Their roles.
        allowed_roles: Roles that may decide this review (one is enough).
        requester: Who started the run; they may not decide its reviews.
        already_decided: The decision the review already has, if any.
        waiting: False when the run has no such review waiting for a decision.
        expiry: When the review expires and the time now; None skips the check.
        digest_shown: Digest of the output the reviewer saw; checked against ``digest_expected``
            when both are given.
        digest_expected: Digest of the output under review.
        decision: What the reviewer asks for; None checks only who may decide.
        review_reason: Why the review was opened (``invalid_output``, ``provider_failure``...).
        approval_only: The review is a request that can only be approved or rejected.
        has_schema: The item's output has a schema an edit is validated against (False for a
            provider failure or an approval request: there is nothing to edit).
    """
    if already_decided is not None:
        by = f" by {already_decided.reviewer}" if already_decided.reviewer is not None else ""
        at = (
            f" at {already_decided.decided_at.isoformat()}"
            if already_decided.decided_at is not None
            else ""
        )
        return f"review {review_id} was already decided ({already_decided.outcome}){by}{at}"
    if not waiting:
        return f"no review {review_id} is waiting for a decision in this run"
    if expiry is not None and expiry.now >= expiry.expires_at:
        return f"review {review_id} expired at {expiry.expires_at.isoformat()}"
    if lacks_role(reviewer_roles, allowed_roles):
        return (
            f"{reviewer} may not decide {workflow} reviews: needs one of the roles "
            f"{', '.join(sorted(allowed_roles))}"
        )
    if requester is not None and reviewer.strip().casefold() == requester.strip().casefold():
        return f"{reviewer} requested this run and cannot decide its review"
    if digest_shown is not None and digest_expected is not None and digest_shown != digest_expected:
        return (
            "the output changed since it was shown to you (stale digest); reload and decide again"
        )
    if decision is None:
        return None
    return _kind_problem(decision, review_reason, approval_only, has_schema)


def lacks_role(reviewer_roles: Collection[str], allowed_roles: Collection[str]) -> bool:
    """True when none of the reviewer's roles may decide the review (one role is enough)."""
    return not set(reviewer_roles) & set(allowed_roles)


def offered_decisions(
    review_reason: str | None, *, approval_only: bool = False, has_schema: bool = True
) -> tuple[str, ...]:
    """The decision kinds an item offers, in the order a reviewer is shown them.

    A request (``ask_approval``, over budget, over a rate limit: approve goes on now) is
    approved or rejected, and so is an input the injection guard quarantined (approve: the step
    runs on it; reject: the run halts); a step whose every model failed has no output to approve
    or edit; an invalid output cannot be approved as it is; only an output with a schema can be
    edited.
    """
    if approval_only or review_reason in ("over_budget", "rate_limited", "prompt_injection"):
        return ("approve", "reject")
    if review_reason == "provider_failure":
        return ("retry", "reject")
    if review_reason == "audit_sample":  # the run went on: a verdict only, nothing to retry
        return ("approve", "edit", "reject") if has_schema else ("approve", "reject")
    kinds = ["retry", "reject"]
    if has_schema:
        kinds.insert(0, "edit")
    if review_reason != "invalid_output":
        kinds.insert(0, "approve")
    return tuple(kinds)


def _kind_problem(
    decision: SubmittedDecision, review_reason: str | None, approval_only: bool, has_schema: bool
) -> str | None:
    """What is missing or not offered in the decision itself."""
    kind = decision.kind
    if kind == "reject" and not (decision.reason and decision.reason.strip()):
        return "a rejection needs a reason"
    if approval_only and kind not in ("approve", "reject"):
        return "this request can only be approved or rejected"
    if kind == "edit" and not has_schema:
        return "this item has no output schema, so there is nothing to edit; " + (
            "retry the step or reject it"
            if review_reason == "provider_failure"
            else "approve or reject it"
        )
    if kind == "edit":
        if not decision.has_edited_output:
            return "an edit needs the edited output"
        if decision.edit_problem is not None:
            return f"the edited output is invalid: {decision.edit_problem}"
    if kind == "retry" and decision.retry_mode is None:
        return "a retry needs a mode: strong_model or with_feedback"
    if kind == "retry" and decision.retry_mode == "with_feedback" and not decision.feedback:
        return "a retry with feedback needs the feedback"
    if kind == "approve" and review_reason == "invalid_output":
        return "the model output is invalid; edit it, reject it or retry the step"
    if kind == "approve" and review_reason == "provider_failure":
        return "there is no output to approve; retry the step or reject it"
    offered = offered_decisions(review_reason, approval_only=approval_only, has_schema=has_schema)
    if kind not in offered:
        return f"this item offers only {', '.join(offered)}; {kind} is not one of them"
    return None
