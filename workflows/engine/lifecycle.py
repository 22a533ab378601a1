"""A run's lifecycle (begin, finish, halted), its ``status`` query and its ``decide`` update."""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from policies.approval import EarlierDecision, Expiry, SubmittedDecision, decision_problem
    from tether.contracts import DecisionReceipt, ReviewDecision, RunState, RunStatus
    from tether.core.digests import output_digest
    from workflows.engine.state import PendingReview, RunContext
    from workflows.steps import RunHalted, TetherResult

ResultT = TypeVar("ResultT", bound=TetherResult)


class RunLifecycle:
    """Who a run is for, what it reports, and the one door a human decision comes in by."""

    def __init__(self) -> None:
        info = workflow.info()
        self._status = RunStatus(
            run_id=info.workflow_id, workflow=info.workflow_type, state="running"
        )
        self._context = RunContext()
        self._pending: PendingReview | None = None
        self._decided: dict[str, DecisionReceipt] = {}
        self._extra_budget_usd = 0.0
        self._reviews_opened = 0
        self._step_runs: dict[str, int] = {}
        self._cleared_inputs: list[str] = []  # digests of inputs a reviewer let past the guard

    def begin(
        self,
        *,
        tenant: str | None = None,
        end_user: str | None = None,
        requester: str | None = None,
        input_preview: dict[str, Any] | None = None,
    ) -> None:
        """Name who the run is for: budgets are charged to ``tenant`` and ``end_user``; the
        ``requester`` may not approve their own items."""
        self._context = RunContext(
            tenant=tenant or "default",
            end_user=end_user,
            requester=requester,
            input_preview=input_preview or {},
        )

    def finish(self, result: ResultT) -> ResultT:
        """Stamp the run's outcome, cost and step confidence onto ``result``."""
        self._set_state("completed")
        return result.model_copy(
            update={"cost_usd": self._status.cost_usd, "steps": self._status.steps}
        )

    def halted(self, result: ResultT, halt: RunHalted) -> ResultT:
        """The result to return after catching ``RunHalted``."""
        stopped = halt.status in ("stopped_over_budget", "rate_limited")
        self._set_state("stopped" if stopped else "failed")
        return result.model_copy(
            update={
                "status": halt.status,
                "halted_step": halt.step,
                "halted_reason": halt.reason,
                "cost_usd": self._status.cost_usd,
                "steps": self._status.steps,
            }
        )

    @property
    def run_id(self) -> str:
        return self._status.run_id

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        return self._status

    @workflow.update(name="decide")
    async def decide(self, decision: ReviewDecision) -> DecisionReceipt:
        # Validators can run for two updates before either handler runs, so the handler checks
        # again: only the first decision is ever taken.
        problem = self._decision_problem(decision)
        if problem:
            raise ApplicationError(problem, type="DecisionRefused", non_retryable=True)
        pending = self._pending
        assert pending is not None
        digest = decision.output_digest
        if decision.kind == "edit" and decision.edited_output is not None:
            digest = output_digest(_validated_edit(pending, decision.edited_output))
        receipt = DecisionReceipt(
            review_id=decision.review_id,
            kind=decision.kind,
            reviewer=decision.reviewer,
            decided_at=workflow.now(),
            output_digest=digest,
        )
        pending.decision = decision
        pending.receipt = receipt
        self._decided[decision.review_id] = receipt
        return receipt

    @decide.validator
    def validate_decision(self, decision: ReviewDecision) -> None:
        problem = self._decision_problem(decision)
        if problem:
            raise ValueError(problem)

    def _decision_problem(self, decision: ReviewDecision) -> str | None:
        earlier = self._decided.get(decision.review_id)
        pending = self._pending
        if pending is None or pending.ticket.review_id != decision.review_id:
            pending = None
        return decision_problem(
            review_id=decision.review_id,
            workflow=self._status.workflow,
            reviewer=decision.reviewer,
            reviewer_roles=decision.reviewer_roles,
            allowed_roles=pending.allowed_roles if pending else [],
            requester=pending.requester if pending else None,
            already_decided=(
                EarlierDecision(
                    outcome=earlier.kind, reviewer=earlier.reviewer, decided_at=earlier.decided_at
                )
                if earlier is not None
                else None
            ),
            waiting=pending is not None,
            expiry=Expiry(pending.ticket.expires_at, workflow.now()) if pending else None,
            digest_shown=decision.output_digest,
            digest_expected=pending.digest if pending else None,
            decision=SubmittedDecision(
                kind=decision.kind,
                reason=decision.reason,
                retry_mode=decision.retry_mode,
                feedback=decision.feedback,
                has_edited_output=decision.edited_output is not None,
                edit_problem=_edit_problem(pending, decision),
            ),
            review_reason=pending.reason if pending else None,
            approval_only=pending.approval_only if pending else False,
            has_schema=pending.output_model is not None if pending else True,
        )

    def _set_state(self, state: RunState) -> None:
        self._status.state = state


def _validated_edit(pending: PendingReview, edited: dict[str, Any]) -> dict[str, Any]:
    if pending.output_model is None:
        return edited
    return pending.output_model.model_validate(edited).model_dump(mode="json")


def _edit_problem(pending: PendingReview | None, decision: ReviewDecision) -> str | None:
    """Where an edited output fails the step's output model, or None (also for non-edits)."""
    if pending is None or decision.kind != "edit" or decision.edited_output is None:
        return None
    try:
        _validated_edit(pending, decision.edited_output)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "output"
        return f"{where}: {first['msg']}"
    return None
