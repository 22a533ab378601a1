"""``TetherWorkflow``: the base class that gives a workflow LLM steps, cost checkpoints and a
durable human review gate, plus the ``status`` query and the ``decide`` update.

Everything in the engine is deterministic: time comes from ``workflow.now()``, ids from the
workflow id, and every side effect is an activity.
"""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from policies.models import ModelTier
    from tether.contracts import LlmStepResult, ReviewDecision, ReviewReason, StepStatus
    from workflows.engine.pre_patch import PrePatchPaths
    from workflows.engine.review_gate import LabelledStep
    from workflows.engine.state import INJECTION_QUARANTINE, STEP_RUNS_ITS_CHECKPOINT, StepCall
    from workflows.engine.text import confidence_line, review_summary
    from workflows.steps import LlmStep, RunHalted, StepDisposition, StepResult

OutputT = TypeVar("OutputT", bound=BaseModel)


class TetherWorkflow(PrePatchPaths):
    """Base class for Tether workflows. Subclass it, decorate with ``@workflow.defn``, call
    ``self.begin(...)`` first in ``run``, then ``await self.llm_step(...)`` for each model call
    and ``await self.ask_approval(...)`` for a human's yes or no.
    """

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
            call = StepCall(step, tier, input_chars, variables, text_refs, feedback, key)
            if workflow.patched(STEP_RUNS_ITS_CHECKPOINT):
                result = await self._checked_call(call, status)
            else:
                checkpoint = await self._checkpoint(call, status)
                result = await self._call_route(call, status, checkpoint)
            if result.status == "quarantined" and workflow.patched(INJECTION_QUARANTINE):
                status.guards.extend(result.guards)
                await self._review_quarantine(step.name, status, result)
                continue  # approved: the step runs on the input the reviewer let through
            status.model, status.simulated = result.model, result.simulated
            status.confidence, status.outcome = result.confidence, result.confidence.outcome
            status.cost_usd = round(status.cost_usd + result.cost_usd, 8)
            status.guards.extend(result.guards)
            self._status.cost_usd = max(self._status.cost_usd, result.run_cost_usd)

            outcome = result.confidence.outcome
            if result.status == "valid" and (outcome == "accept" or not step.gate):
                status.state = "done"
                return _step_result(step, result, result.output, "accepted", None)
            if result.status == "valid" and outcome == "block":
                status.state = "failed"
                raise RunHalted("blocked", step.name, confidence_line(result.confidence, "blocked"))
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
                summary=review_summary(step.name, reason, result),
                output=result.output,
                raw_output=result.raw_output,
                digest=result.output_digest,
                output_model=step.output,
                confidence=result.confidence,
                escalate=reason == "escalated",
                labelled=LabelledStep(
                    step.prompt.version,
                    result.model,
                    variables | {f"ref:{name}": ref for name, ref in text_refs.items()},
                ),
            )
            status.decision = decision.kind
            if decision.kind == "approve":
                status.state = "done"
                return _step_result(step, result, result.output, "approved", decision)
            if decision.kind == "edit":
                status.state = "done"
                return _step_result(step, result, decision.edited_output, "edited", decision)
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

    async def _review_quarantine(
        self, step_name: str, status: StepStatus, result: LlmStepResult
    ) -> None:
        """The injection guard held the step's input back from the model: a reviewer approves
        it (the step then runs on it) or rejects it (the run halts)."""
        verdict = result.quarantine.model_dump(mode="json") if result.quarantine else {}
        status.state = "awaiting_review"
        decision, _ = await self._review(
            step_name=step_name,
            reason="prompt_injection",
            summary=review_summary(step_name, "prompt_injection", result),
            output=verdict,
            raw_output=None,
            digest=result.output_digest,
            output_model=None,
            confidence=None,
            approval_only=True,
        )
        status.decision = decision.kind
        if decision.kind != "approve":
            status.state = "rejected"
            raise RunHalted(
                "rejected", step_name, f"input rejected by {decision.reviewer}: {decision.reason}"
            )
        status.state = "running"
        if result.quarantine is not None:
            self._cleared_inputs.extend(result.quarantine.input_digests)


def _step_result(
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
