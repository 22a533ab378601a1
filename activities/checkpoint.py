"""The cost checkpoint: estimate a step's cost and reserve it against every budget scope."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session
from temporalio import activity

from activities.deps import ActivityDeps
from activities.failures import to_application_error
from policies.budgets import SpendSoFar, check_budget
from policies.effective import effective_for, step_confidence
from policies.pricing import step_worst_case_usd
from policies.routing import downgrade_for, route_model
from tether.contracts import CheckpointInput, CheckpointResult
from tether.core.errors import TetherError
from tether.store.audit_records import record_budget_action
from tether.store.ledger import BudgetReservation, reserve
from tether.store.spend import lock_scopes, scopes_charged


class CheckpointActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name="tether.cost_checkpoint")
    async def cost_checkpoint(self, inp: CheckpointInput) -> CheckpointResult:
        try:
            return await self.deps.in_session(lambda session: check_cost(self.deps, session, inp))
        except TetherError as exc:
            raise to_application_error(exc) from exc


def route_for(deps: ActivityDeps, inp: CheckpointInput) -> list[str]:
    """The step's fallback chain: the model it names, or its tier's models that are configured."""
    if inp.model:
        return [inp.model]
    return route_model(deps.policy.routing, inp.tier, inp.input_chars, deps.providers.available)


def judge_model_for(deps: ActivityDeps) -> str:
    """The model that judges answers: the first configured model of the strong tier."""
    return route_model(deps.policy.routing, "strong", 0, deps.providers.available)[0]


def step_estimate_usd(deps: ActivityDeps, inp: CheckpointInput, model: str) -> float:
    """The step attempt's worst case on ``model``: its main call, every repair, the extra
    self-consistency samples and the judge (on the judge's own model), as its policy sets them;
    with the cache's check of a reused answer, a second judge call."""
    confidence = step_confidence(deps.policy, inp.workflow, inp.step)
    cache = deps.policy.cache
    checked = confidence.judge and cache.enabled and cache.verify_reuse
    return step_worst_case_usd(
        deps.policy.prices,
        model_id=model,
        input_chars=inp.input_chars,
        max_output_tokens=inp.max_output_tokens,
        max_repairs=confidence.max_repairs,
        samples=confidence.samples,
        judge_model_id=judge_model_for(deps) if confidence.judge else None,
        judge_calls=2 if checked else 1,
    )


def check_cost(deps: ActivityDeps, session: Session, inp: CheckpointInput) -> CheckpointResult:
    """Route the step, estimate its worst case and, when every budget allows it (or
    ``inp.force``), reserve the estimate under ``inp.reservation_key``.

    The check and the hold are one atomic step: the budget scopes' totals are read with their
    rows locked and stay locked until the hold is written and the transaction commits, so
    concurrent checkpoints of one tenant see each other's holds and cannot together pass a
    budget.
    """
    policy = deps.policy
    budgets = effective_for(policy, inp.workflow).budgets
    route = route_for(deps, inp)
    model = route[0]
    estimate = step_estimate_usd(deps, inp, model)
    scopes = scopes_charged(inp.run_id, inp.tenant, inp.end_user, datetime.now(UTC))
    run, tenant, *user = (_spend(pair) for pair in lock_scopes(session, scopes))
    check = check_budget(
        budgets,
        estimate,
        run=run,
        user_daily=user[0] if user else None,
        tenant_monthly=tenant,
        extra_run_budget_usd=inp.extra_run_budget_usd,
        downgrade_model=downgrade_for(policy.routing, model),
    )
    if not (check.allowed or inp.force):
        record_budget_action(session, inp, check, model)
        return CheckpointResult(check=check, model=model, route=route)
    reserved = reserve(
        session,
        BudgetReservation(
            key=inp.reservation_key,
            run_id=inp.run_id,
            tenant=inp.tenant,
            end_user=inp.end_user,
            estimate_usd=estimate,
            model=model,
        ),
    )
    if reserved and not check.allowed:  # over budget, and a reviewer approved the spend
        record_budget_action(session, inp, check, model)
    return CheckpointResult(
        check=check, model=model, route=route, reservation_key=inp.reservation_key
    )


def _spend(pair: tuple[float, float]) -> SpendSoFar:
    spent, reserved = pair
    return SpendSoFar(spent_usd=spent, reserved_usd=reserved)
