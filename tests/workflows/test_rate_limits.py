"""Rate limits and provider caps on the real dev server and store: each outcome (wait on a
durable timer, refuse, ask a reviewer), users and tenants counted apart, and a provider's cap
holding under a burst of concurrent runs."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from policies.limits import LimitsPolicy, LimitWindow, ProviderCap
from policies.models import TetherPolicy
from tests.fakes.provider_server import FakeProviderServer
from tests.policy_variants import gated, judging_always, routed
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import GPT, decision_for, ledger, openai_settings, wait_for_pending
from tether.contracts import DecisionReceipt
from tether.core.settings import Settings
from tether.store.audit import events_for
from tether.store.engine import get_engine
from tether.store.limits import LimitCounter
from tether.store.step_events import events_after
from tether.worker import running_worker

pytestmark = pytest.mark.integration

HOUR = 3600  # windows no test run can cross by chance


def with_limits(policy: TetherPolicy, **limits: Any) -> TetherPolicy:
    """The policy with these limits in place of the default ones, every step accepted and judged
    (a step's judge call counts against its provider's cap)."""
    limited = policy.model_copy(update={"limits": LimitsPolicy(**limits)})
    return gated(judging_always(limited), accept=0.0)


def step_states(settings: Settings, run_id: str) -> list[tuple[str, str | None]]:
    """The run's step events: state, and for a wait the limit it waited on."""
    with Session(get_engine(settings.resolved_database_url)) as session:
        return [
            (e.state, e.detail.split(";")[0] if e.state == "waiting" and e.detail else None)
            for e in events_after(session, run_id)
        ]


def result_run_id(runs: list[tuple[str, OneStepResult]], result: OneStepResult) -> str:
    return next(run_id for run_id, found in runs if found is result)


def per_user(requests: int, seconds: int = HOUR) -> list[LimitWindow]:
    return [LimitWindow(seconds=seconds, requests=requests)]


async def ask(
    client: Client, settings: Settings, user: str, tenant: str = "acme"
) -> tuple[str, OneStepResult]:
    run_id = f"limits-{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(
        "test_one_step",
        Question(text="What is the capital of France?", user=user, tenant=tenant),
        id=run_id,
        task_queue=settings.task_queue,
        result_type=OneStepResult,
    )
    return run_id, result


def audit(settings: Settings, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return [(e.kind, e.detail) for e in events_for(session, run_id=run_id)]


def user_windows(settings: Settings, tenant: str, user: str) -> dict[int, int]:
    """Requests counted per window start for one user, as the store holds them."""
    with Session(get_engine(settings.resolved_database_url)) as session:
        rows = session.exec(select(LimitCounter)).all()
    parsed = [(json.loads(row.key), row.requests) for row in rows]
    return {key[-1]: n for key, n in parsed if key[:3] == ["user", tenant, user]}


def timers(history: WorkflowHistory) -> list[float]:
    """The durations (seconds) of the timers the run started."""
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


def longest_activity_s(history: WorkflowHistory) -> float:
    started: dict[int, datetime] = {}
    longest = 0.0
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[e.activity_task_started_event_attributes.scheduled_event_id] = (
                e.event_time.ToDatetime()
            )
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            begun = started[e.activity_task_completed_event_attributes.scheduled_event_id]
            longest = max(longest, (e.event_time.ToDatetime() - begun).total_seconds())
    return longest


async def test_a_user_over_the_limit_waits_on_a_durable_timer(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    # One step per user every 4 seconds; three runs of one user asked at once.
    waiting = with_limits(policy, per_user=per_user(1, seconds=4), on_exceed="wait")
    async with running_worker(client, settings, policy=waiting, extra_workflows=TEST_WORKFLOWS):
        runs = await asyncio.gather(*(ask(client, settings, "u1") for _ in range(3)))
        histories = [await client.get_workflow_handle(rid).fetch_history() for rid, _ in runs]
    assert [result.status for _, result in runs] == ["completed"] * 3
    # Three steps need three windows: at least one run waited, and it waited on a Temporal
    # timer until its window reset, not in a worker (no activity lasted a window).
    waited = [(run, h) for run, h in zip(runs, histories, strict=True) if timers(h)]
    assert waited
    for (_, result), history in waited:
        assert all(0 < t <= 4.5 for t in timers(history))
        assert longest_activity_s(history) < 4.0
        events = [g for g in result.steps[0].guards if g.guard == "rate_limit"]
        # The timer is the guard's wait to the millisecond (Temporal keeps it in nanoseconds).
        assert [g.value for g in events] == pytest.approx(timers(history), abs=1e-3)
        assert {g.outcome for g in events} == {"waited"}
        assert "user u1: 1 requests per 4 s" in events[0].detail
        # The run's timeline (run page, live stream, `tether status --follow`) shows each wait
        # before the step runs.
        states = step_states(settings, result_run_id(runs, result))
        assert states[: len(events)] == [("waiting", "user u1: 1 requests per 4 s")] * len(events)
        assert [state for state, _ in states[len(events) :]] == ["running", "done"]
    # The store counted the user's three steps in three windows, one each.
    assert sorted(user_windows(settings, "acme", "u1").values()) == [1, 1, 1]
    rid = waited[0][0][0]
    assert "rate_limit" in [kind for kind, _ in audit(settings, rid)]


async def test_refuse_ends_the_run_with_the_limit_and_its_reset_and_users_are_apart(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    refusing = with_limits(policy, per_user=per_user(1), on_exceed="refuse")
    async with running_worker(client, settings, policy=refusing, extra_workflows=TEST_WORKFLOWS):
        _, first = await ask(client, settings, "u1")
        refused_id, refused = await ask(client, settings, "u1")
        _, other_user = await ask(client, settings, "u2")
        _, other_tenant = await ask(client, settings, "u1", tenant="globex")
    assert first.status == "completed"
    assert refused.status == "rate_limited"
    assert refused.halted_step == "answer"
    assert refused.halted_reason is not None
    assert "user u1: 1 requests per hour" in refused.halted_reason
    assert "resets at" in refused.halted_reason
    assert [g.outcome for g in refused.steps[0].guards] == ["refused"]
    assert ledger(settings, refused_id) == [], "no model was called"
    held = [detail for kind, detail in audit(settings, refused_id) if kind == "rate_limit"]
    assert len(held) == 1 and held[0]["action"] == "refuse"
    assert held[0]["limit"] == "user u1: 1 requests per hour"
    # Another user of the tenant, and the same user name in another tenant, are not held back.
    assert other_user.status == "completed"
    assert other_tenant.status == "completed"


async def test_a_tenant_limit_holds_all_its_users_together(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    refusing = with_limits(
        policy,
        per_user=per_user(5),
        per_tenant=[LimitWindow(seconds=HOUR, requests=2)],
        on_exceed="refuse",
    )
    async with running_worker(client, settings, policy=refusing, extra_workflows=TEST_WORKFLOWS):
        results = [(await ask(client, settings, user))[1] for user in ("u1", "u2", "u3")]
        _, other_tenant = await ask(client, settings, "u3", tenant="globex")
    assert [r.status for r in results] == ["completed", "completed", "rate_limited"]
    assert results[2].halted_reason is not None
    assert "tenant acme: 2 requests per hour" in results[2].halted_reason
    assert other_tenant.status == "completed"


@pytest.mark.parametrize("verdict", ["approve", "reject"])
async def test_review_asks_a_human_and_approve_goes_on_now(
    client: Client, settings: Settings, policy: TetherPolicy, verdict: str
) -> None:
    reviewing = with_limits(policy, per_user=per_user(1), on_exceed="review")
    run_id = f"limits-{uuid.uuid4().hex[:8]}"
    async with running_worker(client, settings, policy=reviewing, extra_workflows=TEST_WORKFLOWS):
        _, first = await ask(client, settings, "u1")
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="And of Spain?", user="u1", tenant="acme"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        assert status.pending is not None and status.pending.reason == "rate_limited"
        assert status.state == "awaiting_review"
        assert ledger(settings, run_id) == [], "nothing is asked while the review waits"
        decision = decision_for(
            status, kind=verdict, reason="not now" if verdict == "reject" else None
        )
        await handle.execute_update("decide", decision, result_type=DecisionReceipt)
        result = await handle.result()
    assert first.status == "completed"
    assert [g.outcome for g in result.steps[0].guards if g.guard == "rate_limit"] == ["review"]
    if verdict == "approve":
        assert result.status == "completed" and result.answer
        calls = [r.call for r in ledger(settings, run_id)]
        assert calls[0] == "main" and calls[-1] == "judge"  # asked once approved
    else:
        assert result.status == "rate_limited"
        assert result.halted_reason is not None and "not now" in result.halted_reason
        assert ledger(settings, run_id) == []


async def test_a_provider_cap_holds_under_a_burst_of_concurrent_runs(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    # 60 requests a minute, counted in 2 s windows: 2 requests per window. Each step asks the
    # provider twice (its answer and the judge), so one step per window.
    capped = with_limits(
        routed(policy, [GPT]),
        providers={"openai": ProviderCap(requests_per_minute=60, window_seconds=2)},
    )
    runs = 5
    async with running_worker(client, settings, policy=capped, extra_workflows=TEST_WORKFLOWS):
        results = await asyncio.gather(*(ask(client, settings, f"user{n}") for n in range(runs)))
    assert [r.status for _, r in results] == ["completed"] * runs
    received = sorted(r.received_at for r in provider_server.requests)
    assert len(received) >= 2 * runs  # an activity retried under load asks again, counted
    # At most two requests per 2 s window: any five in a row span three windows, so more than
    # one window's length (less the judge's lag behind its step's checkpoint).
    spans = [received[i + 4] - received[i] for i in range(len(received) - 4)]
    assert min(spans) > 1.0, spans
    assert received[-1] - received[0] > 2 * (runs - 2), "the burst was spread over the windows"
    waited = [g for _, r in results for g in r.steps[0].guards if g.guard == "provider_cap"]
    assert waited and {g.outcome for g in waited} == {"waited"}
