"""What a step does when a cost checkpoint refuses it: downgrade the model, ask a human to
approve the spend, or stop the run (the policy picks)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether.contracts import CheckpointInput, CheckpointResult, StepStatus
    from workflows.engine.review_gate import ReviewGate
    from workflows.engine.state import StepCall
    from workflows.steps import RunHalted


class BudgetActions(ReviewGate):
    """The cost checkpoint a step asks for, and the policy's answer to a refusal."""

    def _checkpoint_input(
        self, call: StepCall, model: str | None, force: bool, limits_waived: bool = False
    ) -> CheckpointInput:
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
            limits_waived=limits_waived,
        )

    async def _over_budget(
        self, call: StepCall, status: StepStatus, refused: CheckpointResult, model: str | None
    ) -> tuple[str | None, bool]:
        """Take the policy's action for a refused checkpoint: the (model, force) to check again
        with, or ``RunHalted``."""
        check, step = refused.check, call.step
        if check.action == "downgrade" and check.downgrade_model and model != check.downgrade_model:
            return check.downgrade_model, False
        if check.action == "approve_spend":
            status.state = "awaiting_review"
            decision = await self.ask_approval(
                step=step.name,
                reason="over_budget",
                summary=f"{step.name}: approve more spend? {check.message}",
                request={"estimate_usd": check.estimate_usd, "message": check.message},
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
