"""``TetherWorkflow``: the base class that gives a workflow LLM steps, cost checkpoints and a
durable human review gate, plus the ``status`` query and the ``decide`` update.

Everything here is deterministic: time comes from ``workflow.now()``, ids from the workflow id,
and every side effect is an activity.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from activities.failures import CONFIGURATION, PROVIDER_REJECTED, failed_model
    from policies.models import ModelTier
    from policies.values import ConfidenceReport
    from tether.contracts import (
        CheckedStepInput,
        CheckedStepResult,
        CheckpointInput,
        CheckpointResult,
        DecisionReceipt,
        LlmStepInput,
        LlmStepResult,
        OpenReviewInput,
        PendingDecision,
        RecordDecisionInput,
        ReviewDecision,
        ReviewNudgeInput,
        ReviewReason,
        ReviewTicket,
        RunState,
        RunStatus,
        StepStatus,
    )
    from tether.core.digests import output_digest
    from workflows.steps import (
        LlmStep,
        RunHalted,
        StepDisposition,
        StepResult,
        TetherResult,
    )

OutputT = TypeVar("OutputT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=TetherResult)
ActivityResultT = TypeVar("ActivityResultT", bound=BaseModel)

SHORT_ACTIVITY = timedelta(seconds=30)
# Patch ids (workflow.patched) of changes that alter the commands a run issues, oldest first.
CHECKPOINT_AS_LOCAL_ACTIVITY = "checkpoint-as-local-activity"
STEP_RUNS_ITS_CHECKPOINT = "step-runs-its-checkpoint"


@dataclass
class _PendingReview:
    ticket: ReviewTicket
    step: str
    reason: ReviewReason
    digest: str
    requester: str | None
    output_model: type[BaseModel] | None
    approval_only: bool
    allowed_roles: list[str]
    decision: ReviewDecision | None = None
    receipt: DecisionReceipt | None = None


@dataclass(frozen=True)
class _StepCall:
    """One attempt scope of a step: what every checkpoint and model call in it is asked."""

    step: LlmStep[Any]
    tier: ModelTier | str
    input_chars: int
    variables: dict[str, str]
    text_refs: dict[str, str]
    feedback: str | None
    key: str


@dataclass
class _RunContext:
    tenant: str = "default"
    end_user: str | None = None
    requester: str | None = None
    input_preview: dict[str, Any] = field(default_factory=dict)


class TetherWorkflow:
    """Base class for Tether workflows. Subclass it, decorate with ``@workflow.defn``, call
    ``self.begin(...)`` first in ``run``, then ``await self.llm_step(...)`` for each model call.
    """

    def __init__(self) -> None:
        info = workflow.info()
        self._status = RunStatus(
            run_id=info.workflow_id, workflow=info.workflow_type, state="running"
        )
        self._context = _RunContext()
        self._pending: _PendingReview | None = None
        self._decided: dict[str, DecisionReceipt] = {}
        self._extra_budget_usd = 0.0
        self._reviews_opened = 0
        self._step_runs: dict[str, int] = {}

    # --- lifecycle ------------------------------------------------------------------------

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
        self._context = _RunContext(
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
        self._set_state("stopped" if halt.status == "stopped_over_budget" else "failed")
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

    # --- query and update -----------------------------------------------------------------

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
            digest = output_digest(self._validated_edit(pending, decision.edited_output))
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
        if earlier is not None:
            return (
                f"review {decision.review_id} was already decided ({earlier.kind}) by "
                f"{earlier.reviewer} at {earlier.decided_at.isoformat()}"
            )
        pending = self._pending
        if pending is None or pending.ticket.review_id != decision.review_id:
            return f"no review {decision.review_id} is waiting for a decision in this run"
        if workflow.now() >= pending.ticket.expires_at:
            return f"review {decision.review_id} expired at {pending.ticket.expires_at.isoformat()}"
        if not set(decision.reviewer_roles) & set(pending.allowed_roles):
            return (
                f"{decision.reviewer} may not decide {self._status.workflow} reviews: needs one of "
                f"the roles {', '.join(sorted(pending.allowed_roles))}"
            )
        if pending.requester is not None and decision.reviewer == pending.requester:
            return f"{decision.reviewer} requested this run and cannot decide its review"
        if decision.output_digest != pending.digest:
            return "the output changed since it was shown to you (stale digest); reload and decide again"
        if decision.kind == "reject" and not (decision.reason and decision.reason.strip()):
            return "a rejection needs a reason"
        if pending.approval_only and decision.kind not in ("approve", "reject"):
            return "this request can only be approved or rejected"
        if decision.kind == "edit":
            if decision.edited_output is None:
                return "an edit needs the edited output"
            try:
                self._validated_edit(pending, decision.edited_output)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "output"
                return f"the edited output is invalid: {where}: {first['msg']}"
        if decision.kind == "retry" and decision.retry_mode is None:
            return "a retry needs a mode: strong_model or with_feedback"
        if (
            decision.kind == "retry"
            and decision.retry_mode == "with_feedback"
            and not decision.feedback
        ):
            return "a retry with feedback needs the feedback"
        if decision.kind == "approve" and pending.reason == "invalid_output":
            return "the model output is invalid; edit it, reject it or retry the step"
        if decision.kind == "approve" and pending.reason == "provider_failure":
            return "there is no output to approve; retry the step or reject it"
        return None

    @staticmethod
    def _validated_edit(pending: _PendingReview, edited: dict[str, Any]) -> dict[str, Any]:
        if pending.output_model is None:
            return edited
        return pending.output_model.model_validate(edited).model_dump(mode="json")

    # --- steps ------------------------------------------------------------------------------

    async def llm_step(
        self,
        step: LlmStep[OutputT],
        variables: dict[str, str] | None = None,
        *,
        text_refs: dict[str, str] | None = None,
        input_chars: int | None = None,
    ) -> StepResult[OutputT]:
        """Run one LLM step: checkpoint its cost, call the model (Temporal retries, then the
        route's fallbacks), score it, and hand it to a human when the gate says so.

        Raises:
            RunHalted: a reviewer rejected, the gate blocked, or a budget stopped the run.
        """
        variables = variables or {}
        text_refs = text_refs or {}
        status = StepStatus(name=step.name, state="running")
        self._status.steps.append(status)
        tier: ModelTier | str = step.tier
        feedback: str | None = None
        if input_chars is None:
            input_chars = sum(len(v) for v in variables.values())
        input_chars += len(step.prompt.system) + len(step.prompt.user)
        # A step a workflow runs more than once (one per chunk, say) keys each run apart.
        occurrence = self._step_runs[step.name] = self._step_runs.get(step.name, 0) + 1
        name = step.name if occurrence == 1 else f"{step.name}#{occurrence}"
        scope = 0
        while True:
            scope += 1
            key = f"{self.run_id}/{name}/{scope}"
            call = _StepCall(step, tier, input_chars, variables, text_refs, feedback, key)
            if workflow.patched(STEP_RUNS_ITS_CHECKPOINT):
                result = await self._checked_call(call, status)
            else:
                checkpoint = await self._checkpoint(call, status)
                result = await self._call_route(call, status, checkpoint)
            status.model, status.simulated = result.model, result.simulated
            status.confidence, status.outcome = result.confidence, result.confidence.outcome
            status.cost_usd = round(status.cost_usd + result.cost_usd, 8)
            self._status.cost_usd = max(self._status.cost_usd, result.run_cost_usd)

            outcome = result.confidence.outcome
            if result.status == "valid" and (outcome == "accept" or not step.gate):
                status.state = "done"
                return self._step_result(step, result, result.output, "accepted", None)
            if result.status == "valid" and outcome == "block":
                status.state = "failed"
                raise RunHalted(
                    "blocked", step.name, _confidence_line(result.confidence, "blocked")
                )
            reason: ReviewReason = (
                "invalid_output"
                if result.status == "invalid_output"
                else "escalated"
                if outcome == "escalate"
                else "low_confidence"
            )
            status.state = "awaiting_review"
            decision, _ = await self._review(
                step_name=step.name,
                reason=reason,
                summary=_review_summary(step.name, reason, result),
                output=result.output,
                raw_output=result.raw_output,
                digest=result.output_digest,
                output_model=step.output,
                confidence=result.confidence,
            )
            status.decision = decision.kind
            if decision.kind == "approve":
                status.state = "done"
                return self._step_result(step, result, result.output, "approved", decision)
            if decision.kind == "edit":
                status.state = "done"
                return self._step_result(step, result, decision.edited_output, "edited", decision)
            if decision.kind == "reject":
                status.state = "rejected"
                raise RunHalted(
                    "rejected", step.name, f"rejected by {decision.reviewer}: {decision.reason}"
                )
            status.state = "running"
            if decision.retry_mode == "strong_model":
                tier, feedback = "strong", None
            else:
                feedback = decision.feedback

    def _step_result(
        self,
        step: LlmStep[OutputT],
        result: LlmStepResult,
        output: dict[str, Any] | None,
        disposition: StepDisposition,
        decision: ReviewDecision | None,
    ) -> StepResult[OutputT]:
        return StepResult(
            step=step.name,
            output=step.output.model_validate(output),
            disposition=disposition,
            confidence=result.confidence,
            model=result.model,
            cost_usd=result.cost_usd,
            decision=decision,
        )

    async def _checked_call(self, call: _StepCall, status: StepStatus) -> LlmStepResult:
        """Each model of the route in turn, each asked in one activity that checkpoints its
        cost first; over-budget actions and a human when every model failed."""
        model: str | None = None  # set by a downgrade: the route is then that model alone
        force = False  # a reviewer approved the spend of the model at ``index``
        index = 0
        activities = 0
        last_error = ""
        while True:
            # Every activity of the step gets keys of its own: a downgrade, an approved spend or
            # a reviewer's retry asks again at the same index, and must be charged again.
            activities += 1
            try:
                checked = await self._step_activity(
                    call,
                    "tether.checked_llm_step",
                    CheckedStepInput(
                        checkpoint=self._checkpoint_input(call, model, force),
                        step=self._step_input(
                            call,
                            model=None,
                            index=index,
                            reservation_key=None,
                            key=f"{call.key}/c{activities}",
                        ),
                    ),
                    CheckedStepResult,
                )
            except ActivityError as err:
                failed = (
                    failed_model(err.cause) if isinstance(err.cause, ApplicationError) else None
                ) or f"model {index + 1} of the route"
                # Bad configuration (a prompt variable missing, say) fails every model alike.
                self._fail_if_unrecoverable(call, status, err, failed, also=(CONFIGURATION,))
                last_error = self._model_failure(call, failed, err)
                index, force = index + 1, False
                continue
            if checked.step is not None:
                return checked.step
            if checked.checkpoint is None:  # past the end of the route: every model failed
                await self._ask_after_every_model_failed(call, status, checked.route, last_error)
                index, force = 0, False
                continue
            downgraded, force = await self._over_budget(call, status, checked.checkpoint, model)
            if downgraded != model:
                model, index = downgraded, 0

    async def _step_activity(
        self, call: _StepCall, activity: str, arg: BaseModel, result_type: type[ActivityResultT]
    ) -> ActivityResultT:
        """A model-calling activity under the step's timeouts, heartbeat and retry policy."""
        options = call.step.options
        return await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=options.start_to_close,
            heartbeat_timeout=options.heartbeat,
            retry_policy=options.retry_policy(),
        )

    async def _run_checkpoint(self, step: LlmStep[Any], inp: CheckpointInput) -> CheckpointResult:
        # A checkpoint is a short store transaction: as a local activity it runs in this
        # workflow task instead of three server round trips. Runs started before the change
        # scheduled it as a normal activity and must replay that way.
        if workflow.patched(CHECKPOINT_AS_LOCAL_ACTIVITY):
            return await workflow.execute_local_activity(
                "tether.cost_checkpoint",
                inp,
                result_type=CheckpointResult,
                start_to_close_timeout=SHORT_ACTIVITY,
                retry_policy=step.options.retry_policy(),
            )
        return await workflow.execute_activity(
            "tether.cost_checkpoint",
            inp,
            result_type=CheckpointResult,
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=step.options.retry_policy(),
        )

    async def _checkpoint(self, call: _StepCall, status: StepStatus) -> CheckpointResult:
        model: str | None = None
        force = False
        while True:
            result = await self._run_checkpoint(
                call.step, self._checkpoint_input(call, model, force)
            )
            if result.check.allowed or result.reservation_key is not None:
                return result
            model, force = await self._over_budget(call, status, result, model)

    async def _over_budget(
        self, call: _StepCall, status: StepStatus, refused: CheckpointResult, model: str | None
    ) -> tuple[str | None, bool]:
        """Take the policy's action for a refused checkpoint: the (model, force) to check again
        with, or ``RunHalted``."""
        check, step = refused.check, call.step
        if check.action == "downgrade" and check.downgrade_model and model != check.downgrade_model:
            return check.downgrade_model, False
        if check.action == "approve_spend":
            status.state = "awaiting_review"
            request = {"estimate_usd": check.estimate_usd, "message": check.message}
            decision, _ = await self._review(
                step_name=step.name,
                reason="over_budget",
                summary=f"{step.name}: approve more spend? {check.message}",
                output=request,
                raw_output=None,
                digest=output_digest(request),
                output_model=None,
                confidence=None,
                approval_only=True,
            )
            status.state = "running"
            if decision.kind == "approve":
                self._extra_budget_usd += check.estimate_usd
                return model, True
            status.state = "stopped"
            raise RunHalted(
                "stopped_over_budget",
                step.name,
                f"more spend refused by {decision.reviewer}: {decision.reason}",
            )
        status.state = "stopped"
        raise RunHalted("stopped_over_budget", step.name, check.message)

    def _checkpoint_input(self, call: _StepCall, model: str | None, force: bool) -> CheckpointInput:
        return CheckpointInput(
            run_id=self.run_id,
            workflow=self._status.workflow,
            step=call.step.name,
            tenant=self._context.tenant,
            end_user=self._context.end_user,
            tier=call.tier,
            model=model,
            input_chars=call.input_chars,
            max_output_tokens=call.step.max_output_tokens,
            extra_run_budget_usd=self._extra_budget_usd,
            reservation_key=call.key,
            force=force,
        )

    def _step_input(
        self,
        call: _StepCall,
        *,
        model: str | None,
        index: int,
        reservation_key: str | None,
        key: str,
    ) -> LlmStepInput:
        step = call.step
        return LlmStepInput(
            run_id=self.run_id,
            workflow=self._status.workflow,
            step=step.name,
            tenant=self._context.tenant,
            end_user=self._context.end_user,
            prompt=step.prompt,
            variables=call.variables,
            text_refs=call.text_refs,
            output_model=step.output_path,
            tier=step.tier,
            model=model,
            fallback_index=index,
            feedback=call.feedback,
            idempotency_key=key,
            max_output_tokens=step.max_output_tokens,
            reservation_key=reservation_key,
        )

    def _fail_if_unrecoverable(
        self,
        call: _StepCall,
        status: StepStatus,
        err: ActivityError,
        model: str,
        also: tuple[str, ...] = (),
    ) -> None:
        """A request the provider rejects (bad key, bad request), or a failure of a type in
        ``also``, fails the step at once instead of moving to the next model."""
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in (PROVIDER_REJECTED, *also):
            status.state = "failed"
            raise ApplicationError(
                f"step {call.step.name} failed on {failed_model(cause) or model}: {cause.message}",
                type="StepFailed",
                non_retryable=True,
            ) from err

    def _model_failure(self, call: _StepCall, model: str, err: ActivityError) -> str:
        """What a reviewer is told about a model that failed after its retries."""
        workflow.logger.warning("step %s: %s failed, trying the next model", call.step.name, model)
        return f"{model}: {err.cause if err.cause else err.message}"

    async def _call_route(
        self, call: _StepCall, status: StepStatus, checkpoint: CheckpointResult
    ) -> LlmStepResult:
        """The route's models in turn, then a human when all failed (and the whole route again
        when they ask for a retry). Runs from before ``STEP_RUNS_ITS_CHECKPOINT`` only."""
        route = checkpoint.route or [checkpoint.model]
        last_error = ""
        round_ = 1
        while True:
            for index, model in enumerate(route):
                try:
                    return await self._step_activity(
                        call,
                        "tether.llm_step",
                        self._step_input(
                            call,
                            model=model,
                            index=index,
                            reservation_key=checkpoint.reservation_key,
                            # A reviewer's retry after every model failed is another pass,
                            # whose calls need keys of their own to be charged.
                            key=(
                                f"{call.key}/m{index}"
                                if round_ == 1
                                else f"{call.key}/r{round_}/m{index}"
                            ),
                        ),
                        LlmStepResult,
                    )
                except ActivityError as err:
                    self._fail_if_unrecoverable(call, status, err, model)
                    last_error = self._model_failure(call, model, err)
            await self._ask_after_every_model_failed(call, status, route, last_error)
            round_ += 1

    async def _ask_after_every_model_failed(
        self, call: _StepCall, status: StepStatus, route: list[str], last_error: str
    ) -> None:
        """Every model in the route failed after its retries: a human retries the step (this
        returns) or rejects it (``RunHalted``)."""
        status.state = "awaiting_review"
        failure = {"error": last_error[:500], "models": route}
        decision, _ = await self._review(
            step_name=call.step.name,
            reason="provider_failure",
            summary=f"{call.step.name}: every model failed ({last_error[:120]})",
            output=None,
            raw_output=last_error,
            digest=output_digest(failure),
            output_model=None,
            confidence=None,
        )
        status.decision = decision.kind
        if decision.kind == "reject":
            status.state = "failed"
            raise RunHalted("provider_failure", call.step.name, last_error)
        status.state = "running"

    # --- the review gate --------------------------------------------------------------------

    async def _review(
        self,
        *,
        step_name: str,
        reason: ReviewReason,
        summary: str,
        output: dict[str, Any] | None,
        raw_output: str | None,
        digest: str,
        output_model: type[BaseModel] | None,
        confidence: ConfidenceReport | None,
        approval_only: bool = False,
    ) -> tuple[ReviewDecision, DecisionReceipt]:
        self._reviews_opened += 1
        review_id = f"{self.run_id}:{step_name}:{self._reviews_opened}"
        opened_at = workflow.now()
        ticket = await workflow.execute_activity(
            "tether.open_review",
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
            ),
            result_type=ReviewTicket,
            start_to_close_timeout=SHORT_ACTIVITY,
        )
        pending = _PendingReview(
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
        await workflow.execute_activity(
            "tether.record_decision",
            RecordDecisionInput(
                review_id=review_id,
                run_id=self.run_id,
                decision=pending.decision,
                decided_at=pending.receipt.decided_at,
                final_output=final_output,
            ),
            start_to_close_timeout=SHORT_ACTIVITY,
        )
        return pending.decision, pending.receipt

    async def _await_decision(self, pending: _PendingReview, opened_at: datetime) -> None:
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

    async def _nudge(self, pending: _PendingReview, kind: str, after: timedelta) -> None:
        ticket = pending.ticket
        waited = _human_duration(after)
        if kind == "expire" or (kind == "default" and ticket.default_action == "fail"):
            await self._record_nudge(
                ticket.review_id, "default", f"no decision after {waited}: run fails"
            )
            raise RunHalted("expired", pending.step, f"no decision within {waited}")
        if kind == "default":
            action = "approve" if ticket.default_action == "approve" else "reject"
            if pending.reason in ("invalid_output", "provider_failure") and action == "approve":
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

    async def _record_nudge(self, review_id: str, kind: str, detail: str) -> list[str]:
        return await workflow.execute_activity(
            "tether.review_nudge",
            ReviewNudgeInput(review_id=review_id, run_id=self.run_id, kind=kind, detail=detail),
            result_type=list[str],
            start_to_close_timeout=SHORT_ACTIVITY,
        )

    def _set_state(self, state: RunState) -> None:
        self._status.state = state


def _confidence_line(report: ConfidenceReport, verdict: str) -> str:
    why = "; ".join(report.reasons) or "no details"
    return f"confidence {report.score:.2f} {verdict} ({why})"


def _review_summary(step: str, reason: ReviewReason, result: LlmStepResult) -> str:
    if reason == "invalid_output":
        return f"{step}: the model's output failed validation after {result.repairs} repairs ({result.validation_error})"
    return f"{step}: {_confidence_line(result.confidence, 'needs review')}"


def _human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
