"""Worker interceptors that record Tether's metrics and raise budget alerts, so neither the
activities' bodies nor the workflows' code do any of it.

- Activities: each LLM step's result (counts, tokens, cost, time per phase, guards; see
  ``activities.step_metrics``) or error; reviews opened; decisions and the time they took.
  After a step, its budget scopes are checked for alerts.
- Workflows: a run's end (status, end-to-end time), recorded only when the run really ends on
  this worker, never while its history is replayed.

A failure to record is logged and never fails the activity or the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.budget_alerts import BudgetAlerts
from activities.deps import ActivityDeps
from activities.failures import failed_model
from activities.step_metrics import record_step, record_step_error
from tether.contracts import (
    CheckedStepInput,
    CheckedStepResult,
    LlmStepInput,
    LlmStepResult,
    OpenReviewInput,
    RecordDecisionInput,
)
from tether.core.metrics import (
    REVIEW_DECISIONS,
    REVIEWS_OPENED,
    RUN_SECONDS,
    RUNS,
    STEP_PHASE_SECONDS,
    TIME_TO_DECISION_SECONDS,
)
from tether.store.reviews import get_review

__all__ = ["ObservingInterceptor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ReviewFacts:
    workflow: str
    step: str
    opened_at: datetime


class ObservingInterceptor(Interceptor):
    """Records metrics around Tether's activities and runs; raises budget alerts after steps.

    Args:
        deps: The worker's store and policy (a decision's review item is read from the store).
        alerts: Budget alerts to check after each step; None checks none.
    """

    def __init__(self, deps: ActivityDeps, alerts: BudgetAlerts | None) -> None:
        self.deps = deps
        self.alerts = alerts

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityObserver(next, self)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _RunObserver

    async def review_facts(self, review_id: str) -> _ReviewFacts | None:
        def _read(session: Session) -> _ReviewFacts | None:
            item = get_review(session, review_id)
            if item is None:
                return None
            return _ReviewFacts(item.workflow, item.step, _utc(item.opened_at))

        return await self.deps.in_session(_read)


class _ActivityObserver(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, root: ObservingInterceptor) -> None:
        super().__init__(next)
        self.root = root

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        argument = input.args[0] if input.args else None
        if isinstance(argument, LlmStepInput | CheckedStepInput):
            step = argument if isinstance(argument, LlmStepInput) else argument.step
            return await self._step(input, step)
        result = await super().execute_activity(input)
        try:
            if isinstance(argument, OpenReviewInput):
                REVIEWS_OPENED.labels(argument.workflow, argument.step, argument.reason).inc()
            elif isinstance(argument, RecordDecisionInput):
                await self._decision(argument)
        except Exception:
            log.exception("recording review metrics failed")
        return result

    async def _step(self, input: ExecuteActivityInput, step: LlmStepInput) -> Any:
        info = activity.info()
        started = time.perf_counter()
        try:
            result = await super().execute_activity(input)
        except Exception as exc:
            error_type = exc.type if isinstance(exc, ApplicationError) else None
            model = failed_model(exc) if isinstance(exc, ApplicationError) else step.model
            record_step_error(step, error_type or type(exc).__name__, model)
            raise
        elapsed = time.perf_counter() - started
        step_result = result.step if isinstance(result, CheckedStepResult) else result
        if not isinstance(step_result, LlmStepResult):
            return result  # refused by its checkpoint, or past the route: no model was called
        try:
            record_step(
                step,
                step_result,
                activity_seconds=elapsed,
                scheduled_at=info.current_attempt_scheduled_time,
                started_at=info.started_time,
            )
            if self.root.alerts is not None:
                self.root.alerts.check_soon(step)
        except Exception:
            log.exception("recording step metrics or budget alerts failed")
        return result

    async def _decision(self, inp: RecordDecisionInput) -> None:
        facts = await self.root.review_facts(inp.review_id)
        if facts is None:
            return
        decision = inp.decision
        REVIEW_DECISIONS.labels(facts.workflow, decision.kind, decision.channel).inc()
        waited = max((_utc(inp.decided_at) - facts.opened_at).total_seconds(), 0.0)
        TIME_TO_DECISION_SECONDS.labels(facts.workflow, decision.kind).observe(waited)
        STEP_PHASE_SECONDS.labels(facts.workflow, facts.step, "human").observe(waited)


class _RunObserver(WorkflowInboundInterceptor):
    """Counts a run's end and its end-to-end time: outside the sandbox's restrictions (metrics
    write to shared files), and never while replaying history, so each end counts once."""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            result = await super().execute_workflow(input)
        except FailureError as exc:  # the run fails (RunHalted carries why)
            _record_run(str(getattr(exc, "status", None) or "failed"))
            raise
        _record_run(str(getattr(result, "status", None) or "completed"))
        return result


def _record_run(status: str) -> None:
    if workflow.unsafe.is_replaying():
        return
    info = workflow.info()
    seconds = max((workflow.now() - info.start_time).total_seconds(), 0.0)
    with workflow.unsafe.sandbox_unrestricted():
        try:
            RUNS.labels(info.workflow_type, status).inc()
            RUN_SECONDS.labels(info.workflow_type, status).observe(seconds)
        except Exception:
            log.exception("recording run metrics failed")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at  # SQLite hands back naive UTC
