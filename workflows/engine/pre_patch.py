"""Code paths that only runs started before a patch still take; delete each with its patch once
no run or saved history from before it remains.

- Before ``STEP_RUNS_ITS_CHECKPOINT``: a step checkpoints its cost in an activity of its own
  (``_checkpoint``), then asks the route's models one activity each (``_call_route``).
- Before ``CHECKPOINT_AS_LOCAL_ACTIVITY`` (inside the above): that checkpoint is a normal
  activity rather than a local one.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.checkpoint import CheckpointActivities
    from activities.llm_step import LlmStepActivities
    from tether.contracts import CheckpointInput, CheckpointResult, LlmStepResult, StepStatus
    from workflows.engine.route import ModelRoute
    from workflows.engine.state import CHECKPOINT_AS_LOCAL_ACTIVITY, SHORT_ACTIVITY, StepCall
    from workflows.steps import LlmStep


class PrePatchPaths(ModelRoute):
    """A checkpoint activity, then one activity per model: how steps ran before
    ``STEP_RUNS_ITS_CHECKPOINT``."""

    async def _checkpoint(self, call: StepCall, status: StepStatus) -> CheckpointResult:
        model: str | None = None
        force = False
        while True:
            result = await self._run_checkpoint(
                call.step, self._checkpoint_input(call, model, force)
            )
            if result.check.allowed or result.reservation_key is not None:
                return result
            model, force = await self._over_budget(call, status, result, model)

    async def _run_checkpoint(self, step: LlmStep[Any], inp: CheckpointInput) -> CheckpointResult:
        # A checkpoint is a short store transaction: as a local activity it runs in this
        # workflow task instead of three server round trips. Runs started before the change
        # scheduled it as a normal activity and must replay that way.
        if workflow.patched(CHECKPOINT_AS_LOCAL_ACTIVITY):
            return await workflow.execute_local_activity_method(
                CheckpointActivities.cost_checkpoint,
                inp,
                start_to_close_timeout=SHORT_ACTIVITY,
                retry_policy=step.options.retry_policy(),
            )
        return await workflow.execute_activity_method(
            CheckpointActivities.cost_checkpoint,
            inp,
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=step.options.retry_policy(),
        )

    async def _call_route(
        self, call: StepCall, status: StepStatus, checkpoint: CheckpointResult
    ) -> LlmStepResult:
        """The route's models in turn, then a human when all failed (and the whole route again
        when they ask for a retry)."""
        route = checkpoint.route or [checkpoint.model]
        last_error = ""
        round_ = 1
        while True:
            for index, model in enumerate(route):
                try:
                    return await self._step_activity(
                        call,
                        LlmStepActivities.llm_step,
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
                    )
                except ActivityError as err:
                    self._fail_if_unrecoverable(call, status, err, model)
                    last_error = self._model_failure(call, model, err)
            await self._ask_after_every_model_failed(call, status, route, last_error)
            round_ += 1
