"""Budget alerts: after a step settles its spend, any threshold of a budget its run, end user
or tenant has now crossed is recorded once (store, audit log), sent to Slack and counted.

Runs in the worker once a step's activity has returned (``check_soon``, started by
``activities.observability``), beside the activity rather than inside it: the step's result is
not held up by Slack, and an alert that cannot be sent never fails the step. A check lost with
its worker is made again by the scope's next step: a crossing is "spend at or over the threshold
and no alert recorded", not an edge, so none is missed for good.

An alert Slack did not take (an error, or its worker died while posting it) is sent again by
``resend_until_cancelled``, run by every worker that has Slack: each due alert is held by one
worker while it posts it (``tether.store.budget_alerts.hold_alert``), and a failed post waits
``alerts.resend_every`` doubling up to an hour, for ``alerts.resend_for``. An alert raised where
Slack is off is never posted later.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from slack_sdk.web.async_client import AsyncWebClient

from activities.deps import ActivityDeps
from policies.budgets import format_usd
from policies.effective import effective_for
from tether.contracts import LlmStepInput
from tether.core.metrics import BUDGET_ALERTS
from tether.store.budget_alerts import (
    BudgetAlert,
    ScopeBudget,
    alert_crossings,
    due_for_resend,
    hold_alert,
    mark_notified,
    put_off,
)
from tether.store.spend import SpendScope

__all__ = ["BudgetAlerts", "alert_text", "resend_until_cancelled"]

log = logging.getLogger(__name__)

_SCOPE_WORDS = {"run": "Run", "user_daily": "Daily user", "tenant_monthly": "Monthly tenant"}
_KNOWN_LIMIT = 10_000
"""How many alert keys a worker remembers as already sent (then it starts over)."""
_LONGEST_WAIT = timedelta(hours=1)
"""The longest wait between two sends of an alert Slack did not take."""
_LATE = timedelta(minutes=1)
"""An alert posted later than this after its crossing says when it was crossed."""


CHECK_EVERY_S = 0.5
"""A tenant's scopes are read at most this often per worker: steps finishing meanwhile are
checked together (an alert waits at most this long; a worker's store reads stay few)."""


class BudgetAlerts:
    """Checks steps' budget scopes against the policy's alert thresholds.

    Args:
        slack: Where alerts are posted; None when Slack is off (store, audit and metric still).
    """

    def __init__(self, deps: ActivityDeps, slack: AsyncWebClient | None) -> None:
        self.deps = deps
        self.slack = slack
        self.channel = deps.policy.alerts.slack_channel or deps.settings.slack_default_channel
        self._known: set[str] = set()
        self._waiting: dict[str, dict[tuple[str, str, str | None], LlmStepInput]] = {}
        self._last_check: dict[str, float] = {}
        self._checks: set[asyncio.Task[None]] = set()

    def check_soon(self, inp: LlmStepInput) -> None:
        """Check the step's scopes in the background, with the tenant's other steps of the
        next ``CHECK_EVERY_S`` (see ``settle``)."""
        batch = self._waiting.get(inp.tenant)
        if batch is not None:  # a check of this tenant is already due: join it
            batch[(inp.workflow, inp.run_id, inp.end_user)] = inp
            return
        self._waiting[inp.tenant] = {(inp.workflow, inp.run_id, inp.end_user): inp}
        last = self._last_check.get(inp.tenant)
        delay = 0.0 if last is None else max(0.0, last + CHECK_EVERY_S - time.monotonic())
        task = asyncio.create_task(self._check_later(inp.tenant, delay), name="budget-alerts")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def settle(self) -> None:
        """Wait for the checks still due or running (a worker's shutdown)."""
        while self._checks:
            await asyncio.gather(*self._checks, return_exceptions=True)

    async def _check_later(self, tenant: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        steps = list(self._waiting.pop(tenant, {}).values())
        self._last_check[tenant] = time.monotonic()
        if len(self._last_check) > _KNOWN_LIMIT:
            self._last_check.clear()
        try:
            await self.check(steps)
        except Exception:
            log.exception("checking budget alerts failed")

    async def check(self, steps: list[LlmStepInput]) -> list[BudgetAlert]:
        """Record, send and count the alerts these steps' spend raised (one store transaction
        for all of them); return them."""
        thresholds = self.deps.policy.alerts.thresholds
        now = datetime.now(UTC)
        budgets: dict[str, tuple[ScopeBudget, LlmStepInput]] = {}
        for inp in steps:
            for budget in _scope_budgets(self.deps, inp, now):
                budgets.setdefault(budget.scope.key, (budget, inp))
        if not thresholds or not budgets:
            return []
        skip = frozenset(self._known)
        wanted = [budget for budget, _ in budgets.values()]
        token = _new_token() if self.slack is not None else None
        fired = await self.deps.in_session(
            lambda session: alert_crossings(
                session, wanted, thresholds, skip=skip, send_token=token
            )
        )
        if len(self._known) > _KNOWN_LIMIT:
            self._known.clear()
        for alert in fired:
            self._known.add(alert.key)
            BUDGET_ALERTS.labels(alert.scope_kind, f"{alert.threshold:g}").inc()
            if token is not None:
                await self._deliver(alert.key, token)
            else:  # say so: in a fleet where only some workers have Slack, this one is lost
                log.info("budget alert %s recorded; Slack is off on this worker", alert.key)
        return fired

    async def resend_unsent(self) -> int:
        """Send the alerts Slack did not take whose wait is over, each held by this worker
        alone while it posts it; return how many Slack took."""
        if self.slack is None:
            return 0
        policy = self.deps.policy.alerts
        keys = await self.deps.in_session(partial(due_for_resend, max_age=policy.resend_for))
        sent = 0
        for key in keys:
            sent += await self._deliver(key, _new_token())
        return sent

    async def _deliver(self, key: str, token: str) -> bool:
        """Hold the alert, post it, and record it sent or put it off after a failure; False
        when Slack did not take it or another worker holds it."""
        assert self.slack is not None
        from activities.slack import SLACK_FAILURES, slack_error

        alert = await self.deps.in_session(partial(hold_alert, key=key, token=token))
        if alert is None:
            return False
        try:
            await self.slack.chat_postMessage(
                channel=self.channel, text=alert_text(alert), unfurl_links=False
            )
        except SLACK_FAILURES as exc:
            log.warning("Slack chat.postMessage failed for budget alert: %s", slack_error(exc))
            wait = self.deps.policy.alerts.resend_every
            await self.deps.in_session(
                partial(put_off, key=key, token=token, base=wait, cap=_LONGEST_WAIT)
            )
            return False
        await self.deps.in_session(partial(mark_notified, key=key, token=token))
        return True


async def resend_until_cancelled(alerts: BudgetAlerts) -> None:
    """Every ``alerts.resend_every``, resends the alerts Slack did not take, until cancelled."""
    every_s = alerts.deps.policy.alerts.resend_every.total_seconds()
    while True:
        await asyncio.sleep(every_s)
        try:
            await alerts.resend_unsent()
        except Exception as exc:  # a store hiccup must not stop the worker
            log.warning("budget alerts: resending failed: %s", type(exc).__name__)


def alert_text(alert: BudgetAlert, now: datetime | None = None) -> str:
    """One line for Slack: which budget, how far, whose; when it is posted late (a resend),
    when it was crossed. Names no user: a user's budget is told by tenant only (the audit log
    keeps the run id)."""
    scope = _SCOPE_WORDS.get(alert.scope_kind, alert.scope_kind)
    if alert.scope_kind == "run" or alert.tenant is None:
        whose = f"run {alert.run_id}"
    else:
        whose = f"tenant {alert.tenant}"
    where = f" (workflow {alert.workflow})" if alert.workflow else ""
    crossed = alert.created_at if alert.created_at.tzinfo else alert.created_at.replace(tzinfo=UTC)
    late = (now or datetime.now(UTC)) - crossed > _LATE
    when = f"; crossed {crossed:%Y-%m-%d %H:%M} UTC" if late else ""
    return (
        f":warning: {scope} budget at {alert.threshold * 100:g}%: {whose} has spent "
        f"{format_usd(alert.spent_usd)} of {format_usd(alert.limit_usd)}{where}{when}"
    )


def _new_token() -> str:
    return uuid.uuid4().hex


def _scope_budgets(deps: ActivityDeps, inp: LlmStepInput, now: datetime) -> list[ScopeBudget]:
    budgets = effective_for(deps.policy, inp.workflow).budgets
    found: list[ScopeBudget] = []
    if budgets.per_run_usd is not None:
        scope = SpendScope.run(inp.run_id)
        limit = budgets.per_run_usd
        found.append(ScopeBudget("run", scope, limit, inp.run_id, inp.tenant, inp.workflow))
    if budgets.per_user_daily_usd is not None and inp.end_user:
        scope = SpendScope.user_day(inp.tenant, inp.end_user, now)
        limit = budgets.per_user_daily_usd
        found.append(ScopeBudget("user_daily", scope, limit, inp.run_id, inp.tenant, inp.workflow))
    if budgets.per_tenant_monthly_usd is not None:
        scope = SpendScope.tenant_month(inp.tenant, now)
        limit = budgets.per_tenant_monthly_usd
        found.append(
            ScopeBudget("tenant_monthly", scope, limit, inp.run_id, inp.tenant, inp.workflow)
        )
    return found
