"""Who may take which decision on a review: the refusal a reviewer reads, in the run and the UI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policies.approval import (
    EarlierDecision,
    Expiry,
    SubmittedDecision,
    decision_problem,
    lacks_role,
    offered_decisions,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def ask(
    decision: SubmittedDecision | None = None,
    *,
    reviewer: str = "bob",
    roles: tuple[str, ...] = ("reviewer",),
    **overrides: object,
) -> str | None:
    """A fair request by default: bob, a reviewer, on a waiting review he did not request."""
    values: dict[str, object] = {
        "review_id": "run-1:answer:1",
        "workflow": "support_triage",
        "reviewer": reviewer,
        "reviewer_roles": list(roles),
        "allowed_roles": ["reviewer", "lead"],
        "requester": "alice",
        "expiry": Expiry(expires_at=LATER, now=NOW),
        "digest_shown": "d1",
        "digest_expected": "d1",
        "decision": decision,
        "review_reason": "low_confidence",
    }
    values.update(overrides)
    return decision_problem(**values)  # type: ignore[arg-type]


def test_a_fair_decision_has_no_problem() -> None:
    assert ask(SubmittedDecision(kind="approve")) is None
    assert ask(SubmittedDecision(kind="reject", reason="wrong category")) is None
    assert ask(SubmittedDecision(kind="retry", retry_mode="strong_model")) is None
    assert ask(SubmittedDecision(kind="edit", has_edited_output=True)) is None


def test_only_the_first_decision_is_taken() -> None:
    earlier = EarlierDecision(outcome="approve", reviewer="carol", decided_at=NOW)
    assert ask(SubmittedDecision(kind="reject", reason="no"), already_decided=earlier) == (
        "review run-1:answer:1 was already decided (approve) by carol at 2026-01-05T12:00:00+00:00"
    )


def test_the_queue_names_the_earlier_outcome_without_a_time() -> None:
    """The UI knows the row's status and reviewer, not the workflow's receipt."""
    assert ask(already_decided=EarlierDecision(outcome="expired")) == (
        "review run-1:answer:1 was already decided (expired)"
    )
    assert ask(already_decided=EarlierDecision(outcome="edit", reviewer="dan")) == (
        "review run-1:answer:1 was already decided (edit) by dan"
    )


def test_no_waiting_review_is_refused() -> None:
    assert ask(SubmittedDecision(kind="approve"), waiting=False) == (
        "no review run-1:answer:1 is waiting for a decision in this run"
    )


def test_an_expired_review_is_refused() -> None:
    expiry = Expiry(expires_at=NOW, now=NOW)
    assert ask(SubmittedDecision(kind="approve"), expiry=expiry) == (
        "review run-1:answer:1 expired at 2026-01-05T12:00:00+00:00"
    )


def test_a_reviewer_needs_one_of_the_allowed_roles() -> None:
    assert ask(SubmittedDecision(kind="approve"), reviewer="carol", roles=("support",)) == (
        "carol may not decide support_triage reviews: needs one of the roles lead, reviewer"
    )


def test_the_requester_cannot_decide_their_own_run() -> None:
    assert ask(SubmittedDecision(kind="approve"), reviewer="alice") == (
        "alice requested this run and cannot decide its review"
    )


def test_a_stale_digest_is_refused() -> None:
    assert ask(SubmittedDecision(kind="approve"), digest_shown="d0") == (
        "the output changed since it was shown to you (stale digest); reload and decide again"
    )


def test_who_may_decide_is_checked_before_what_they_decide() -> None:
    """The UI's pre-check asks with no decision: only who may decide is judged."""
    assert ask(None, digest_shown=None) is None
    assert ask(None, reviewer="alice", roles=("support",)) == (
        "alice may not decide support_triage reviews: needs one of the roles lead, reviewer"
    )


@pytest.mark.parametrize(
    ("decision", "reason", "approval_only", "problem"),
    [
        (SubmittedDecision(kind="reject", reason="  "), "low_confidence", False, "a rejection needs a reason"),
        (SubmittedDecision(kind="edit", has_edited_output=True), "over_budget", True, "this request can only be approved or rejected"),
        (SubmittedDecision(kind="edit"), "low_confidence", False, "an edit needs the edited output"),
        (
            SubmittedDecision(kind="edit", has_edited_output=True, edit_problem="category: bad"),
            "low_confidence",
            False,
            "the edited output is invalid: category: bad",
        ),
        (SubmittedDecision(kind="retry"), "low_confidence", False, "a retry needs a mode: strong_model or with_feedback"),
        (SubmittedDecision(kind="retry", retry_mode="with_feedback"), "low_confidence", False, "a retry with feedback needs the feedback"),
        (SubmittedDecision(kind="approve"), "invalid_output", False, "the model output is invalid; edit it, reject it or retry the step"),
        (SubmittedDecision(kind="approve"), "provider_failure", False, "there is no output to approve; retry the step or reject it"),
    ],
)  # fmt: skip
def test_what_a_decision_must_carry(
    decision: SubmittedDecision, reason: str, approval_only: bool, problem: str
) -> None:
    assert ask(decision, review_reason=reason, approval_only=approval_only) == problem


def test_only_the_decisions_an_item_offers_are_taken() -> None:
    edit = SubmittedDecision(kind="edit", has_edited_output=True)
    assert ask(edit, review_reason="provider_failure", has_schema=False) == (
        "this item has no output schema, so there is nothing to edit; retry the step or reject it"
    )
    assert offered_decisions("provider_failure", has_schema=False) == ("retry", "reject")
    assert offered_decisions("invalid_output") == ("edit", "retry", "reject")
    assert offered_decisions("low_confidence", has_schema=False) == ("approve", "retry", "reject")
    assert offered_decisions("escalated", approval_only=True) == ("approve", "reject")


def test_an_approval_request_takes_approve_and_reject() -> None:
    for kind in ("approve", "reject"):
        decision = SubmittedDecision(kind=kind, reason="too dear")
        assert ask(decision, review_reason="over_budget", approval_only=True) is None


def test_one_allowed_role_is_enough() -> None:
    assert not lacks_role(["viewer", "lead"], ["reviewer", "lead"])
    assert lacks_role(["viewer"], ["reviewer", "lead"])
    assert lacks_role([], ["reviewer"])
