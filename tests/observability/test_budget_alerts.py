"""Budget alerts: once per threshold and period, to Slack, the audit log and the metrics; once
only when two workers cross the same threshold together (SQLite and PostgreSQL); and an alert
Slack did not take is sent again, once, by one worker."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.client import Client

from activities.budget_alerts import alert_text
from policies.models import BudgetAlertPolicy, TetherPolicy
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.observability.scrape import parse, value
from tests.policy_variants import gated, with_budgets
from tests.store.conftest import fresh_store_url
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tether.core.metrics import render_metrics
from tether.core.settings import Settings
from tether.store.audit import AuditSigner, events_for, use_audit_signer
from tether.store.budget_alerts import (
    BudgetAlert,
    ScopeBudget,
    alert_crossings,
    alerts_for,
    due_for_resend,
    hold_alert,
    mark_notified,
    put_off,
)
from tether.store.engine import get_engine, session_scope
from tether.store.spend import SpendScope, add_to_totals
from tether.worker import running_worker


def slack_settings(tmp_path: Path, temporal_address: str, slack: FakeSlack) -> Settings:
    return make_settings(
        tmp_path,
        temporal_address,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_API_URL=slack.api_url,
        SLACK_CHANNEL="#spend",
    )


def monthly_budget(policy: TetherPolicy, alerts: BudgetAlertPolicy) -> TetherPolicy:
    """A tenant's month budget of $1 alone, with ``alerts``."""
    return with_budgets(
        policy, per_run_usd=None, per_user_daily_usd=None, per_tenant_monthly_usd=1.0
    ).model_copy(update={"alerts": alerts})


async def ask(client: Client, settings: Settings, tenant: str) -> OneStepResult:
    return await client.execute_workflow(
        "test_one_step",
        Question(text="What is the capital of France?", tenant=tenant),
        id=f"alert-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        result_type=OneStepResult,
    )


async def run_for(
    client: Client, settings: Settings, policy: TetherPolicy, tenant: str
) -> OneStepResult:
    async with running_worker(
        client, settings, policy=gated(policy, accept=0.0), extra_workflows=TEST_WORKFLOWS
    ):
        return await ask(client, settings, tenant)


@pytest.mark.integration
async def test_an_alert_fires_once_per_threshold_crossed_and_not_again_in_the_period(
    client: Client, tmp_path: Path, temporal_address: str, policy: TetherPolicy
) -> None:
    with FakeSlack() as slack:
        settings = slack_settings(tmp_path, temporal_address, slack)
        # A month's budget of $1 with alerts at 50 % and 80 %; the tenant's other spend this
        # month is put in the store around each run, a run itself adding well under a cent.
        thresholds = [0.5, 0.8]
        alerting = monthly_budget(policy, BudgetAlertPolicy(thresholds=thresholds))
        tenant = f"acme-{uuid.uuid4().hex[:6]}"
        month = SpendScope.tenant_month(tenant, datetime.now(UTC))
        before = parse(render_metrics().decode())
        posted: list[int] = []
        for other_spend in (0.49999, 0.0, 0.3, 0.0):
            with session_scope(settings.resolved_database_url) as session:
                add_to_totals(session, [month], spent=other_spend)
            result = await run_for(client, settings, alerting, tenant)
            assert result.status == "completed" and 0 < result.cost_usd < 0.01
            posted.append(len(slack.calls_to("chat.postMessage")))
        after = parse(render_metrics().decode())

    # Crossing 50 % (run 1), nothing new (run 2), crossing 80 % (run 3), nothing new (run 4).
    assert posted == [1, 1, 2, 2], "one message per threshold crossed, none again in the month"
    texts = [call.args["text"] for call in slack.calls_to("chat.postMessage")]
    assert "Monthly tenant budget at 50%" in texts[0] and f"tenant {tenant}" in texts[0]
    assert "Monthly tenant budget at 80%" in texts[1]
    assert all(
        call.ok and call.args["channel"] == "#spend" for call in slack.calls_to("chat.postMessage")
    )
    with session_scope(settings.resolved_database_url) as session:
        alerts = alerts_for(session, month)
        audited = [
            event
            for run_id in {alert.run_id for alert in alerts}
            for event in events_for(session, run_id=run_id)
            if event.kind == "budget_alert"
        ]
    assert [a.threshold for a in alerts] == thresholds
    assert all(a.notified_at is not None for a in alerts)
    assert sorted(e.detail["threshold"] for e in audited) == thresholds
    for share in ("0.5", "0.8"):
        labels = {"scope": "tenant_monthly", "threshold": share}
        counted = value(after, "tether_budget_alerts_total", **labels)
        assert counted - value(before, "tether_budget_alerts_total", **labels) == 1


@pytest.mark.integration
async def test_an_alert_slack_did_not_take_is_sent_again_once(
    client: Client, tmp_path: Path, temporal_address: str, policy: TetherPolicy
) -> None:
    with FakeSlack() as slack:
        settings = slack_settings(tmp_path, temporal_address, slack)
        alerts = BudgetAlertPolicy(thresholds=[0.5], resend_every=timedelta(seconds=0.2))
        alerting = monthly_budget(policy, alerts)
        tenant = f"acme-{uuid.uuid4().hex[:6]}"
        month = SpendScope.tenant_month(tenant, datetime.now(UTC))
        with session_scope(settings.resolved_database_url) as session:
            add_to_totals(session, [month], spent=0.49999)
        # Slack is down for the first send and the first resend, then takes the alert.
        slack.fail_next("chat.postMessage", "service_unavailable", times=2)
        async with running_worker(
            client, settings, policy=gated(alerting, accept=0.0), extra_workflows=TEST_WORKFLOWS
        ):
            result = await ask(client, settings, tenant)
            assert result.status == "completed"
            sent = await slack.wait_for("chat.postMessage", within_s=20)
            await asyncio.sleep(1.0)  # five more resend rounds: none may post it again
        calls = slack.calls_to("chat.postMessage")

    assert [call.ok for call in calls] == [False, False, True]
    assert len(sent) == 1 and "Monthly tenant budget at 50%" in sent[0].args["text"]
    assert f"tenant {tenant}" in sent[0].args["text"]
    assert "(workflow test_one_step)" in sent[0].args["text"]
    with session_scope(settings.resolved_database_url) as session:
        [alert] = alerts_for(session, month)
        audited = [e for e in events_for(session, run_id=alert.run_id) if e.kind == "budget_alert"]
    assert alert.notified_at is not None and alert.send_attempts == 2  # resends claimed
    assert len(audited) == 1, "resending records no second alert"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, prefix="tether_alerts") as url:
        use_audit_signer(url, AuditSigner(key=b"alerts-test-key-" * 3))
        get_engine(url)  # migrated
        yield url


def test_two_workers_crossing_together_record_each_alert_once(store_url: str) -> None:
    scope = SpendScope.tenant_month("acme", datetime.now(UTC))

    def budgets(i: int) -> list[ScopeBudget]:
        return [ScopeBudget("tenant_monthly", scope, 10.0, f"run-{i}", "acme")]

    with session_scope(store_url) as session:
        add_to_totals(session, [scope], spent=9.0)
    start = threading.Barrier(8)
    fired: list[float] = []
    lock = threading.Lock()

    failures: list[BaseException] = []

    def worker(i: int) -> None:
        start.wait()
        try:
            with session_scope(store_url) as session:
                found = alert_crossings(session, budgets(i), [0.5, 0.8, 1.0])
        except BaseException as exc:  # a worker whose check failed would send nothing
            failures.append(exc)
            return
        with lock:
            fired.extend(alert.threshold for alert in found)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert sorted(fired) == [0.5, 0.8], "each crossed threshold once, 100 % not reached"
    with Session(get_engine(store_url)) as session:
        assert [a.threshold for a in alerts_for(session, scope)] == [0.5, 0.8]
        audited = [e for e in events_for(session) if e.kind == "budget_alert"]
    assert len(audited) == 2


def _unsent_alert(
    store_url: str, tenant: str, *, age: timedelta = timedelta(0), token: str | None = "raiser"
) -> str:
    """An alert raised by a worker that holds it under ``token`` (None: Slack was off there)."""
    scope = SpendScope.tenant_month(tenant, datetime.now(UTC))
    with session_scope(store_url) as session:
        add_to_totals(session, [scope], spent=6.0)
        [alert] = alert_crossings(
            session,
            [ScopeBudget("tenant_monthly", scope, 10.0, "run-1", tenant, "wf")],
            [0.5],
            send_token=token,
        )
        row = session.get(BudgetAlert, alert.key)
        assert row is not None
        row.created_at -= age
        session.add(row)
    return alert.key


def _fail_post(store_url: str, key: str, token: str = "raiser") -> None:
    """The holder's post failed and the wait is over (put off, then the clock moved on)."""
    with session_scope(store_url) as session:
        put_off(session, key, token, base=timedelta(minutes=1), cap=timedelta(hours=1))
        row = session.get(BudgetAlert, key)
        assert row is not None and row.send_after is not None
        row.send_after -= timedelta(minutes=2)
        session.add(row)


def test_an_alert_is_held_by_one_worker_at_a_time(store_url: str) -> None:
    keys = [_unsent_alert(store_url, f"t{i}") for i in range(5)]
    for key in keys:
        _fail_post(store_url, key)
    start = threading.Barrier(8)
    held: list[tuple[str, str]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        start.wait()
        try:
            for key in keys:
                with session_scope(store_url) as session:
                    alert = hold_alert(session, key, f"worker-{n}")
                if alert is not None:
                    with lock:
                        held.append((key, alert.send_token or ""))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert sorted(key for key, _ in held) == sorted(keys), "each due alert held once"
    with session_scope(store_url) as session:
        assert due_for_resend(session, max_age=timedelta(days=1)) == [], "held: not due"
        assert all(hold_alert(session, key, "late-worker") is None for key in keys)
        # The holder renews its own hold before posting.
        key, token = held[0]
        assert hold_alert(session, key, token) is not None


def test_what_is_resent_and_when(store_url: str) -> None:
    failed = _unsent_alert(store_url, "failed")
    sent = _unsent_alert(store_url, "sent")
    _unsent_alert(store_url, "slack-off", token=None)
    old = _unsent_alert(store_url, "old", age=timedelta(days=2))
    held = _unsent_alert(store_url, "held")  # its raiser is posting it now
    for key in (failed, sent, old):
        _fail_post(store_url, key)
    with session_scope(store_url) as session:
        mark_notified(session, sent)
    day = timedelta(days=1)
    with session_scope(store_url) as session:
        # Not resent: one Slack took, one raised where Slack was off (nobody ever posts it), one
        # older than resend_for, one its raiser still holds.
        assert due_for_resend(session, max_age=day) == [failed]
        assert hold_alert(session, held, "another-worker") is None
    # Each failed post waits twice as long as the one before, up to the cap.
    waits = []
    for n in range(4):
        with session_scope(store_url) as session:
            token = f"resender-{n}"
            assert hold_alert(session, failed, token) is not None
            put_off(session, failed, token, base=timedelta(minutes=1), cap=timedelta(minutes=10))
            row = session.get(BudgetAlert, failed)
            assert row is not None and row.send_after is not None
            waits.append(row.send_after.replace(tzinfo=UTC) - datetime.now(UTC))
            row.send_after = datetime.now(UTC) - timedelta(seconds=1)
            session.add(row)
    assert [round(wait / timedelta(minutes=1)) for wait in waits] == [2, 4, 8, 10]
    # A late post names when the budget was crossed.
    with session_scope(store_url) as session:
        row = session.get(BudgetAlert, failed)
        assert row is not None
        text = alert_text(row, now=datetime.now(UTC) + timedelta(hours=2))
    assert "Monthly tenant budget at 50%: tenant failed has spent $6.00 of $10.00" in text
    assert "(workflow wf); crossed " in text and text.endswith(" UTC")
