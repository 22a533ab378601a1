"""A step's model route: each model in turn, each asked in one activity that checkpoints its
cost first; the next model when one fails after its retries; a human when every model failed."""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities.failures import CONFIGURATION, PROVIDER_REJECTED, failed_model
    from activities.failures import PROVIDER_CIRCUIT_OPEN as CIRCUIT_OPEN
    from activities.llm_step import LlmStepActivities
    from tether.contracts import (
        CheckedStepInput,
        GuardEvent,
        LlmStepInput,
        LlmStepResult,
        StepStatus,
    )
    from tether.core.digests import output_digest
    from workflows.engine.budget import BudgetActions
    from workflows.engine.limits import RateLimitActions
    from workflows.engine.state import RATE_LIMITED_STEPS, StepCall
    from workflows.steps import RunHalted

StepArgT = TypeVar("StepArgT")
StepReturnT = TypeVar("StepReturnT")


class ModelRoute(BudgetActions, RateLimitActions):
    """Asks the step's models, falling back along the route the checkpoint chose."""

    async def _checked_call(self, call: StepCall, status: StepStatus) -> LlmStepResult:
        """Each model of the route in turn, each asked in one activity that checkpoints its
        cost first; over-budget actions and a human when every model failed."""
        model: str | None = None  # set by a downgrade: the route is then that model alone
        force = False  # a reviewer approved the spend of the model at ``index``
        waived = False  # a reviewer approved going on over the user's and tenant's limits
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
                    LlmStepActivities.checked_llm_step,
                    CheckedStepInput(
                        checkpoint=self._checkpoint_input(call, model, force, waived),
                        step=self._step_input(
                            call,
                            model=None,
                            index=index,
                            reservation_key=None,
                            key=f"{call.key}/c{activities}",
                        ),
                    ),
                )
            except ActivityError as err:
                failed = (
                    failed_model(err.cause) if isinstance(err.cause, ApplicationError) else None
                ) or f"model {index + 1} of the route"
                # Bad configuration (a prompt variable missing, say) fails every model alike.
                self._fail_if_unrecoverable(call, status, err, failed, also=(CONFIGURATION,))
                if isinstance(err.cause, ApplicationError) and err.cause.type == CIRCUIT_OPEN:
                    # The worker skipped the model at once: its breaker is open.
                    status.guards.append(
                        GuardEvent(guard="breaker", outcome="skipped", detail=failed)
                    )
                last_error = self._model_failure(call, failed, err)
                index, force = index + 1, False
                continue
            if checked.step is not None:
                return checked.step
            if checked.limited is not None and workflow.patched(RATE_LIMITED_STEPS):
                waived = await self._rate_limited(call, status, checked.limited) or waived
                continue
            if checked.checkpoint is None:  # past the end of the route: every model failed
                await self._ask_after_every_model_failed(call, status, checked.route, last_error)
                index, force = 0, False
                continue
            downgraded, force = await self._over_budget(call, status, checked.checkpoint, model)
            if downgraded != model:
                model, index = downgraded, 0

    async def _step_activity(
        self,
        call: StepCall,
        activity: MethodAsyncSingleParam[LlmStepActivities, StepArgT, StepReturnT],
        arg: StepArgT,
    ) -> StepReturnT:
        """A model-calling activity under the step's timeouts, heartbeat and retry policy."""
        options = call.step.options
        return await workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=options.start_to_close,
            heartbeat_timeout=options.heartbeat,
            retry_policy=options.retry_policy(),
        )

    def _step_input(
        self,
        call: StepCall,
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
            trusted_variables=list(step.trusted_variables),
            cleared_inputs=list(self._cleared_inputs),
            feature=step.feature,
            side_effecting=step.side_effecting,
        )

    def _fail_if_unrecoverable(
        self,
        call: StepCall,
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

    def _model_failure(self, call: StepCall, model: str, err: ActivityError) -> str:
        """What a reviewer is told about a model that failed after its retries."""
        workflow.logger.warning("step %s: %s failed, trying the next model", call.step.name, model)
        return f"{model}: {err.cause if err.cause else err.message}"

    async def _ask_after_every_model_failed(
        self, call: StepCall, status: StepStatus, route: list[str], last_error: str
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
