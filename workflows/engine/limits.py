"""What a step does when a rate limit or its provider's cap holds it back: wait on a durable
timer and ask again, end the run, or ask a human (the checkpoint says which)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether.contracts import GuardEvent, RateLimited, StepStatus
    from workflows.engine.review_gate import ReviewGate
    from workflows.engine.state import StepCall
    from workflows.steps import RunHalted


class RateLimitActions(ReviewGate):
    """The workflow's side of the rate-limit guard: it only acts on what the activity found."""

    async def _rate_limited(self, call: StepCall, status: StepStatus, limited: RateLimited) -> bool:
        """Take the action for a held-back step; True when a reviewer approved going on now
        (the next ask passes the user's and tenant's limits), or ``RunHalted``."""
        step = call.step.name
        resets = f"resets at {limited.resets_at:%Y-%m-%d %H:%M:%S} UTC"
        if limited.action == "wait":
            status.guards.append(_event(limited, "waited"))
            # A Temporal timer: the run holds no worker while it waits, and survives restarts.
            await workflow.sleep(timedelta(seconds=limited.retry_after_s))
            return False
        if limited.action == "refuse":
            status.guards.append(_event(limited, "refused"))
            status.state = "stopped"
            raise RunHalted("rate_limited", step, f"over {limited.limit}; {resets}")
        status.guards.append(_event(limited, "review"))
        status.state = "awaiting_review"
        decision = await self.ask_approval(
            step=step,
            reason="rate_limited",
            summary=f"{step}: over {limited.limit}; go on now?",
            request={
                "limit": limited.limit,
                "resets_at": limited.resets_at.isoformat(),
                "retry_after_s": limited.retry_after_s,
            },
        )
        if decision.kind == "approve":
            status.state = "running"
            return True
        status.state = "stopped"
        raise RunHalted(
            "rate_limited",
            step,
            f"over {limited.limit}; going on refused by {decision.reviewer}: {decision.reason}",
        )


def _event(limited: RateLimited, outcome: str) -> GuardEvent:
    return GuardEvent(
        guard=limited.guard, outcome=outcome, detail=limited.limit, value=limited.retry_after_s
    )
