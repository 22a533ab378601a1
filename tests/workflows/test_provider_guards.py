"""Routing rules and circuit breakers on the real worker and Temporal dev server, with the fake
provider: a model's outage opens its breaker, later steps skip it without calling it, the
fallback serves, and the breaker closes once the model recovers; ``/api/providers`` shows it;
``auto`` steps go to the tier the rules choose, with the reason recorded."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.client import Client

from activities.provider_health import provider_health
from policies.guard_routing import BreakerPolicy, ProviderHealthPolicy, RouteRule, RouteWhen
from policies.models import TetherPolicy
from tests.fakes.provider_server import FakeProviderServer
from tests.policy_variants import gated, judging_always, routed
from tests.security.apps import app_over
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import openai_settings
from tether.contracts import GuardEvent
from tether.core.settings import Settings
from tether.store.audit import events_for
from tether.store.engine import get_engine
from tether.worker import running_worker

pytestmark = pytest.mark.integration

DEAD, LIVE = "openai/gpt-4o-mini", "openai/gpt-4o"
ALICE = ("alice", "alice-dev")
COOLDOWN_S = 60.0


def outage_policy(policy: TetherPolicy) -> TetherPolicy:
    """Cheap steps go to DEAD, then LIVE (the judge runs on LIVE); a breaker that opens after
    three failures, stays open 60 s, and is published every 0.2 s."""
    health = ProviderHealthPolicy(
        breaker=BreakerPolicy(failure_threshold=3, cooldown_s=COOLDOWN_S, max_cooldown_s=600.0),
        call_timeout_s=5.0,
        publish_every_s=0.2,
        stale_after_s=30.0,
    )
    base = gated(routed(judging_always(policy), [DEAD, LIVE], strong=[LIVE]), accept=0.0)
    return base.model_copy(update={"provider_health": health})


async def ask(client: Client, settings: Settings, workflow: str, question: Question) -> Any:
    run_id = f"guards-{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(
        workflow, question, id=run_id, task_queue=settings.task_queue, result_type=OneStepResult
    )
    return run_id, result


def audit_kinds(settings: Settings, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return [(e.kind, e.detail) for e in events_for(session, run_id=run_id)]


async def wait_published(
    settings: Settings, policy: TetherPolicy, state: str, live_calls: int | None = None
) -> dict[str, Any]:
    """``GET /api/providers`` once the worker has published DEAD in ``state`` (and, when
    given, LIVE with ``live_calls`` calls: the worker publishes on its own schedule)."""
    async with app_over(settings, policy) as http:
        for _ in range(100):
            response = await http.get("/api/providers", auth=ALICE)
            assert response.status_code == 200, response.text
            view = {m["model"]: m for m in response.json()["models"]}
            live_seen = live_calls is None or (
                LIVE in view and view[LIVE]["combined"]["calls"] >= live_calls
            )
            if DEAD in view and view[DEAD]["combined"]["state"] == state and live_seen:
                return view
            await asyncio.sleep(0.1)
    raise AssertionError(f"{DEAD} never published as {state}: {view}")


async def test_an_outage_opens_the_breaker_later_steps_skip_the_model_and_it_closes_on_recovery(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    guarded = outage_policy(policy)
    dead = DEAD.split("/", 1)[1]
    provider_server.outage(dead, fail_with=503)
    question = Question(text="What is 2+2?")
    async with running_worker(client, settings, policy=guarded, extra_workflows=TEST_WORKFLOWS):
        first_id, first = await ask(client, settings, "test_one_step", question)
        # Three attempts on DEAD fail (503) and open its breaker; the fourth attempt is not
        # sent: the activity fails fast and the route moves to LIVE.
        assert first.status == "completed" and first.steps[0].model == LIVE
        assert len(provider_server.requests_for(dead)) == 3
        assert provider_health().state(DEAD) == "open"

        later = [await ask(client, settings, "test_one_step", question) for _ in range(3)]
        assert all(r.status == "completed" and r.steps[0].model == LIVE for _, r in later)
        assert len(provider_server.requests_for(dead)) == 3, "an open breaker sends nothing"
        skipped = GuardEvent(guard="breaker", outcome="skipped", detail=DEAD)
        for run_id, result in [(first_id, first), *later]:
            assert skipped in result.steps[0].guards
            route = [g for g in result.steps[0].guards if g.guard == "route"]
            assert [(g.outcome, g.detail.endswith(f"model {LIVE}")) for g in route] == [
                ("cheap", True)
            ]
            kinds = [kind for kind, _ in audit_kinds(settings, run_id)]
            assert "guard_breaker" in kinds and "guard_route" in kinds
        # A skipped model costs no attempt of its own: one activity, no retry, no ledger row.
        assert not any(
            detail.get("model") == DEAD
            for kind, detail in audit_kinds(settings, later[0][0])
            if kind == "model_call"
        )

        view = await wait_published(settings, guarded, "open", live_calls=8)
        dead_view = view[DEAD]
        assert dead_view["combined"]["calls"] == 3
        assert dead_view["combined"]["failures"] == 3
        assert dead_view["combined"]["error_rate"] == 1.0
        assert dead_view["combined"]["open_on"] == 1
        [worker_row] = dead_view["workers"]
        assert worker_row["state"] == "open" and worker_row["stale"] is False
        assert worker_row["trips"] == 1 and worker_row["open_until"] is not None
        live_view = view[LIVE]["combined"]
        assert live_view["state"] == "closed" and live_view["error_rate"] == 0.0
        # Four main calls and four judge calls, all on LIVE.
        assert live_view["calls"] == 8 and live_view["latency_p95_ms"] is not None

        # The provider recovers; after the cool-down (the registry's clock moves on rather than
        # the test sleeping a minute) one probe goes through and closes the breaker.
        provider_server.recover(dead)
        registry = provider_health()
        real_clock = registry._clock
        registry._clock = lambda: real_clock() + COOLDOWN_S + 1
        assert provider_health().state(DEAD) == "half_open"
        _, healed = await ask(client, settings, "test_one_step", question)
        assert healed.status == "completed" and healed.steps[0].model == DEAD
        assert len(provider_server.requests_for(dead)) == 4
        assert provider_health().state(DEAD) == "closed"
        view = await wait_published(settings, guarded, "closed")
        assert view[DEAD]["workers"][0]["trips"] == 0


async def test_a_model_hanging_past_the_call_timeout_opens_its_breaker(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    guarded = outage_policy(policy)
    health = guarded.provider_health.model_copy(update={"call_timeouts_s": {DEAD: 0.3}})
    guarded = guarded.model_copy(update={"provider_health": health})
    dead = DEAD.split("/", 1)[1]
    provider_server.outage(dead, fail_with=None, delay_s=30)
    async with running_worker(client, settings, policy=guarded, extra_workflows=TEST_WORKFLOWS):
        _, first = await ask(client, settings, "test_one_step", Question(text="What is 2+2?"))
        assert first.status == "completed" and first.steps[0].model == LIVE
        assert len(provider_server.requests_for(dead)) == 3
        assert provider_health().state(DEAD) == "open"
        _, second = await ask(client, settings, "test_one_step", Question(text="And 3+3?"))
        assert second.steps[0].model == LIVE
        assert len(provider_server.requests_for(dead)) == 3


CODE = "My script fails:\n```python\ndef total(xs):\n    return sum(x.price for x in xs)\n```\nWhy?"
GERMAN = "Hallo, ich kann mich seit gestern nicht mehr anmelden. Was soll ich tun, bitte?"
LONG = "My order arrived damaged and I would like a refund please. " * 120


async def test_auto_steps_go_to_the_tier_the_rules_choose_and_record_why(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    rules = policy.route_rules
    assert rules is not None
    premium = RouteRule(name="premium", when=RouteWhen(tenant=["acme"]), tier="strong")
    ruled = gated(policy, accept=0.0).model_copy(
        update={"route_rules": rules.model_copy(update={"rules": [premium, *rules.rules]})}
    )
    cases = [
        (Question(text="How do I reset my password?"), "cheap", "default: no rule matched"),
        (Question(text=CODE), "strong", "(code): has_code"),
        (Question(text=GERMAN), "strong", "(not English): language de not in [en]"),
        (Question(text=LONG), "strong", "(long input): tokens"),
        (Question(text="Hi, where is my invoice?", tenant="acme"), "strong", "tenant acme"),
    ]
    async with running_worker(client, settings, policy=ruled, extra_workflows=TEST_WORKFLOWS):
        for question, tier, reason in cases:
            run_id, result = await ask(client, settings, "test_one_auto_step", question)
            assert result.status == "completed"
            step = result.steps[0]
            assert step.model == f"simulated/{tier}"
            [route] = [g for g in step.guards if g.guard == "route"]
            assert route.outcome == tier and reason in route.detail, route.detail
            audited = [d for k, d in audit_kinds(settings, run_id) if k == "guard_route"]
            assert audited and audited[0]["outcome"] == tier and reason in audited[0]["detail"]
