"""The runs list, a run's live event stream and the dashboard, on real runs: the real Temporal
dev server, a real worker, the real app under uvicorn; the stream read by an httpx client."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from policies.effective import step_confidence
from policies.models import TetherPolicy
from review_ui import run_views
from review_ui.app import create_app
from review_ui.routes import run_feed
from tests.review_ui.conftest import ALICE, BOB, UiServer, login, pause_at, wait_for_pending
from tests.security.apps import with_login
from tether import client as runs_client
from tether.core.settings import Settings
from tether.store.budget_alerts import BudgetAlert
from tether.store.engine import session_scope
from tether.store.examples import LabelledExample
from tether.store.run_ids import RunIdClaim, claim_run_id
from tether.store.spend import SpendScope
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket

pytestmark = pytest.mark.integration

MALLORY = ("mallory", "mallory-pass-1")
"""A reviewer of another tenant (globex) only."""


@pytest.fixture
def review_policy(policy: TetherPolicy) -> TetherPolicy:
    """support_triage pauses at classify; one more login serves only the tenant globex."""
    return with_login(pause_at(policy, "classify"), *MALLORY, ["reviewer", "lead"], ["globex"])


@pytest.fixture
async def review_worker(
    client: Client, settings: Settings, review_policy: TetherPolicy
) -> AsyncIterator[Worker]:
    async with running_worker(client, settings, policy=review_policy) as worker:
        yield worker


@pytest.fixture
def ui(settings: Settings, review_policy: TetherPolicy) -> Iterator[UiServer]:
    server = UiServer(create_app(settings, policy=review_policy)).start()
    yield server
    server.stop()


async def start_registered_run(client: Client, settings: Settings) -> str:
    """A support_triage run of the tenant acme, started as the CLI and the API start runs."""
    ticket = Ticket(
        subject="Charged twice",
        body="I was billed twice for order 1234 of the Pro plan. Please refund one charge.",
        tenant="acme",
    )
    run_id = f"triage-{uuid.uuid4().hex[:10]}"
    return await runs_client.start_run(client, settings, "support_triage", ticket, run_id=run_id)


class SseReader:
    """Reads an SSE response into (event, id, data) frames and comment lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next_frame(self) -> tuple[str, str | None, dict[str, Any]]:
        event, event_id, data = "message", None, ""
        async for line in self.lines:
            if line == "":
                if data:
                    return event, event_id, json.loads(data)
                continue
            if line.startswith(":"):
                self.comments.append(line)
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data += value
        raise AssertionError("the stream ended without another event")


async def approve(http: httpx.AsyncClient, client: Client, run_id: str) -> None:
    status = await wait_for_pending(client, run_id)
    assert status.pending is not None
    response = await http.post(
        f"/api/reviews/{status.pending.review_id}/decision",
        json={"kind": "approve", "output_digest": status.pending.output_digest},
    )
    assert response.status_code == 200, response.text


async def test_the_stream_delivers_each_step_of_a_real_run_in_order_then_ends(
    client: Client,
    settings: Settings,
    review_worker: Worker,
    ui: UiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_feed, "HEARTBEAT_S", 0.3)
    run_id = await start_registered_run(client, settings)
    frames: list[tuple[str, str | None, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http,
        http.stream("GET", f"/api/runs/{run_id}/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        while not frames or frames[-1][2].get("state") != "awaiting_review":
            frames.append(await asyncio.wait_for(reader.next_frame(), 30))
        # Nothing happens while the run waits for a human: the stream sends heartbeats.
        await asyncio.sleep(1.0)
        await approve(http, client, run_id)
        while frames[-1][0] != "end":
            frames.append(await asyncio.wait_for(reader.next_frame(), 30))
        heartbeats = [c for c in reader.comments if c.startswith(": heartbeat")]

    steps = [(data["step"], data["state"]) for kind, _, data in frames if kind == "step"]
    assert steps == [
        ("classify", "running"),
        ("classify", "done"),
        ("classify", "awaiting_review"),
        ("classify", "approved"),
        ("extract", "running"),
        ("extract", "done"),
        ("draft_reply", "running"),
        ("draft_reply", "done"),
    ]
    ids = [int(event_id) for kind, event_id, _ in frames if kind == "step" and event_id]
    assert ids == list(range(1, len(steps) + 1))
    done = [data for kind, _, data in frames if kind == "step" and data["state"] == "done"]
    assert all(d["model"] and d["latency_ms"] > 0 and d["input_tokens"] > 0 for d in done)
    assert all(0 <= d["confidence_score"] <= 1 and d["confidence_outcome"] for d in done)
    decided = next(data for _, _, data in frames if data.get("state") == "approved")
    assert decided["actor"] == "bob"
    assert frames[-1][0] == "end" and frames[-1][2]["state"] == "completed"
    assert heartbeats, "a quiet stream sends heartbeat comments"

    # Resumable: a client that saw seq 3 gets 4 onwards, then the end at once (the run is over).
    async with (
        httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as http,
        http.stream(
            "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "3"}
        ) as response,
    ):
        reader = SseReader(response)
        resumed = [await reader.next_frame() for _ in range(len(steps) - 3 + 1)]
    assert [int(i) for kind, i, _ in resumed if kind == "step" and i] == list(
        range(4, len(steps) + 1)
    )
    assert resumed[-1][0] == "end"


async def test_runs_list_shows_state_cost_steps_and_who_decided(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    finished = await start_registered_run(client, settings)
    waiting = await start_registered_run(client, settings)
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http:
        await approve(http, client, finished)
        await client.get_workflow_handle(finished).result()
        await wait_for_pending(client, waiting)

        listed = (await http.get("/api/runs")).json()
        by_id = {run["run_id"]: run for run in listed["runs"]}
        assert by_id[finished]["state"] == "completed"
        assert by_id[finished]["steps"] == 3
        assert by_id[finished]["decided_by"] == ["bob"]
        assert by_id[finished]["cost_usd"] > 0
        assert by_id[finished]["duration_s"] > 0
        assert by_id[waiting]["state"] == "awaiting_review"
        assert by_id[waiting]["current_step"] == "classify"

        only_done = (await http.get("/api/runs", params={"status": "completed"})).json()
        assert [run["run_id"] for run in only_done["runs"]] == [finished]
        other_workflow = await http.get("/api/runs", params={"workflow": "document_summary"})
        assert other_workflow.json()["runs"] == []
        assert (await http.get("/api/runs", params={"tenant": "default"})).json()["runs"] == []

        page = await http.get("/runs")
        assert page.status_code == 303  # the pages need a login session, not HTTP Basic
        figures = (await http.get("/api/dashboard", params={"window": "1h"})).json()
    assert figures["total_cost_usd"] == pytest.approx(
        by_id[finished]["cost_usd"] + by_id[waiting]["cost_usd"], rel=1e-6
    )
    assert figures["queue_depth_now"] == 1
    assert figures["time_to_decision_s"]["count"] == 1
    assert sum(figures["confidence_bins"]) == 4  # three steps of one run, one of the other
    assert {s["step"] for s in figures["step_latency"]} == {"classify", "extract", "draft_reply"}
    # The finished run's end is now remembered: listing again asks Temporal nothing about it.
    remembered = await asyncio.to_thread(
        run_views.visible_run, settings.resolved_database_url, finished, _bob(ui)
    )
    assert remembered is not None and remembered.ended_state == "completed"


async def test_every_run_is_reachable_page_by_page_and_a_state_filter_counts_unseen_ends(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    # 520 runs of acme recorded as ended (older than any real run here), and one real run that
    # ends without the runs list having been asked about it.
    t0 = datetime.now(UTC) - timedelta(days=30)
    with session_scope(settings.resolved_database_url) as session:
        for n in range(520):
            claim_run_id(session, f"old-{n:03}", "support_triage", "acme")
    with session_scope(settings.resolved_database_url) as session:
        for n in range(520):
            claim = session.get(RunIdClaim, f"old-{n:03}")
            assert claim is not None
            claim.claimed_at = t0 + timedelta(seconds=n)
            claim.ended_state, claim.ended_at = "stopped", t0 + timedelta(seconds=n, minutes=1)
            session.add(claim)
    finished = await start_registered_run(client, settings)
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http:
        await approve(http, client, finished)
        await client.get_workflow_handle(finished).result()
        completed = (await http.get("/api/runs", params={"status": "completed"})).json()
        first = (await http.get("/api/runs")).json()
        last = (await http.get("/api/runs", params={"page": first["pages"]})).json()
        stopped = (await http.get("/api/runs", params={"status": "stopped", "page": 11})).json()

    assert [run["run_id"] for run in completed["runs"]] == [finished]
    assert completed["total"] == 1
    assert (first["total"], first["pages"]) == (521, 11)
    assert first["runs"][0]["run_id"] == finished
    assert [run["run_id"] for run in last["runs"]] == [f"old-{n:03}" for n in reversed(range(21))]
    assert (stopped["total"], stopped["page"]) == (520, 11)
    assert [run["run_id"] for run in stopped["runs"]][-1] == "old-000"


async def test_runs_temporal_does_not_know_are_shown_unknown_and_counted_honestly(
    settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    # Three runs claimed two hours ago that Temporal has no history of (past its retention), and
    # one claimed a moment ago that has not started yet.
    with session_scope(settings.resolved_database_url) as session:
        for n in range(3):
            claim_run_id(session, f"gone-{n}", "support_triage", "acme")
        claim_run_id(session, "starting", "support_triage", "acme")
    with session_scope(settings.resolved_database_url) as session:
        for n in range(3):
            claim = session.get(RunIdClaim, f"gone-{n}")
            assert claim is not None
            claim.claimed_at = datetime.now(UTC) - timedelta(hours=2)
            session.add(claim)
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http:
        first = (await http.get("/api/runs", params={"status": "running"})).json()
        again = (await http.get("/api/runs", params={"status": "running"})).json()
        everything = (await http.get("/api/runs")).json()
        refused = await http.get("/api/runs", params={"status": "unknown"})

    # The forgotten ones are remembered as such, so they are not counted as maybe running; the
    # one not started yet is, and shown as unknown (what the page counts, it shows).
    for page in (first, again):
        assert page["total"] == 1
        assert [(run["run_id"], run["state"]) for run in page["runs"]] == [("starting", "unknown")]
    assert everything["total"] == 4
    assert {run["state"] for run in everything["runs"]} == {"unknown"}
    assert refused.status_code == 422


def _bob(ui: UiServer) -> Any:
    desk = ui.server.config.app.state.desk  # type: ignore[attr-defined]
    return next(r for r in desk.policy.reviewers if r.name == "bob")


async def test_a_login_of_another_tenant_is_told_the_run_does_not_exist(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    run_id = await start_registered_run(client, settings)
    await wait_for_pending(client, run_id)
    async with httpx.AsyncClient(base_url=ui.base_url, auth=MALLORY, timeout=30) as mallory:
        async with mallory.stream("GET", f"/api/runs/{run_id}/events") as refused:
            assert refused.status_code == 404  # (a stream, so a wrong 200 fails, not hangs)
        assert (await mallory.get("/api/runs")).json()["runs"] == []
        assert (await mallory.get("/api/runs", params={"tenant": "acme"})).json()["runs"] == []
        figures = (await mallory.get("/api/dashboard")).json()
        assert figures["total_cost_usd"] == 0 and figures["queue_depth_now"] == 0
    async with httpx.AsyncClient(base_url=ui.base_url, auth=ALICE, timeout=30) as alice:
        assert [r["run_id"] for r in (await alice.get("/api/runs")).json()["runs"]] == [run_id]
        async with alice.stream("GET", f"/api/runs/{run_id}/events") as response:
            assert response.status_code == 200
    # The pages, with a login session: the run page is a 404, the runs page does not list it.
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as browser_like:
        await login(browser_like, *MALLORY)
        assert (await browser_like.get(f"/runs/{run_id}")).status_code == 404
        listing = await browser_like.get("/runs")
        assert listing.status_code == 200 and run_id not in listing.text
        async with browser_like.stream("GET", f"/api/runs/{run_id}/events") as refused:
            assert refused.status_code == 404
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as browser_like:
        await login(browser_like, *ALICE)
        page = await browser_like.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "awaiting review" in page.text
        assert run_id in (await browser_like.get("/runs")).text
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as anonymous:
        assert (await anonymous.get(f"/api/runs/{run_id}/events")).status_code == 401


CALIBRATED = ("support_triage", "extract")
"""acme's labelled outputs of this step: at thresholds up to 0.5 precision 8/10, up to 0.7
8/9, from 0.75 to 0.9 5/5, above 0.9 none accepted; the lowest threshold reaching 0.95 on at
least 5 outputs is 0.75."""


def seed_dashboard_data(database_url: str) -> dict[str, str]:
    """Budget alerts and labelled outputs of acme (bob's tenant) and globex (mallory's)."""
    now = datetime.now(UTC)
    acme_run = f"acme-run-{uuid.uuid4().hex[:6]}"
    globex_run = f"globex-run-{uuid.uuid4().hex[:6]}"
    month = SpendScope.tenant_month("acme", now)
    alerts = [
        BudgetAlert(
            key=f"{month.key}@0.8",
            scope_kind="tenant_monthly",
            scope=month.key,
            threshold=0.8,
            spent_usd=812.5,
            limit_usd=1000.0,
            run_id=acme_run,
            created_at=now - timedelta(minutes=5),
            notified_at=now - timedelta(minutes=5),
        ),
        BudgetAlert(
            key=f"{SpendScope.run(acme_run).key}@1",
            scope_kind="run",
            scope=SpendScope.run(acme_run).key,
            threshold=1.0,
            spent_usd=1.02,
            limit_usd=1.0,
            run_id=acme_run,
            created_at=now - timedelta(minutes=1),
        ),
        BudgetAlert(
            key=f"{SpendScope.user_day('globex', 'wile', now).key}@0.5",
            scope_kind="user_daily",
            scope=SpendScope.user_day("globex", "wile", now).key,
            threshold=0.5,
            spent_usd=5.0,
            limit_usd=10.0,
            run_id=globex_run,
            created_at=now - timedelta(minutes=2),
        ),
    ]
    scored = [(0.9, "approve")] * 5 + [(0.7, "approve")] * 3 + [(0.7, "reject"), (0.5, "edit")]
    examples = [
        LabelledExample(
            review_id=f"{acme_run}:extract:{n}",
            run_id=acme_run,
            workflow=CALIBRATED[0],
            step=CALIBRATED[1],
            tenant="acme",
            decision=decision,
            asked_because="low_confidence",
            confidence_score=score,
            decided_at=now - timedelta(minutes=n),
        )
        for n, (score, decision) in enumerate(scored)
    ]
    # globex's outputs: rejected at a high score (they would spoil acme's precision), and a
    # step of its own.
    examples += [
        LabelledExample(
            review_id=f"{globex_run}:{step}:{n}",
            run_id=globex_run,
            workflow=CALIBRATED[0] if step == CALIBRATED[1] else "document_summary",
            step=step,
            tenant="globex",
            decision="reject",
            asked_because="low_confidence",
            confidence_score=0.95,
        )
        for n in range(5)
        for step in (CALIBRATED[1], "summarize")
    ]
    with session_scope(database_url) as session:
        claim_run_id(session, acme_run, "support_triage", "acme")
        claim_run_id(session, globex_run, "support_triage", "globex")
        session.add_all([*alerts, *examples])
    return {"acme": acme_run, "globex": globex_run}


async def test_the_dashboard_shows_budget_alerts_and_calibration_of_the_logins_tenants_only(
    settings: Settings, review_policy: TetherPolicy, ui: UiServer
) -> None:
    runs = seed_dashboard_data(settings.resolved_database_url)
    accept = step_confidence(review_policy, *CALIBRATED).thresholds.accept
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as bob:
        figures = (await bob.get("/api/dashboard")).json()
    alerts = figures["budget_alerts"]
    assert [(a["scope"], a["threshold"], a["tenant"]) for a in alerts] == [
        ("run", 1.0, "acme"),  # newest first
        ("tenant_monthly", 0.8, "acme"),
    ]
    assert alerts[0]["period"] == runs["acme"] and alerts[0]["notified"] is False
    assert alerts[1]["period"] == datetime.now(UTC).strftime("%Y-%m")
    assert alerts[1]["spent_usd"] == 812.5 and alerts[1]["notified"] is True
    [calibration] = figures["calibration"]
    assert (calibration["workflow"], calibration["step"]) == CALIBRATED
    assert calibration["labelled"] == 10
    assert calibration["target_precision"] == 0.95
    assert calibration["suggested_threshold"] == 0.75
    assert calibration["accept_threshold"] == accept
    precision = {row["threshold"]: row["precision"] for row in calibration["thresholds"]}
    assert precision[0.5] == 0.8 and precision[0.7] == pytest.approx(8 / 9, abs=1e-4)
    assert precision[0.75] == 1.0 and precision[0.9] == 1.0 and precision[0.95] is None

    async with httpx.AsyncClient(base_url=ui.base_url, auth=MALLORY, timeout=30) as mallory:
        theirs = (await mallory.get("/api/dashboard")).json()
    assert [(a["scope"], a["tenant"], a["end_user"]) for a in theirs["budget_alerts"]] == [
        ("user_daily", "globex", "wile")
    ]
    steps = {(c["workflow"], c["step"]): c for c in theirs["calibration"]}
    assert set(steps) == {CALIBRATED, ("document_summary", "summarize")}
    assert steps[CALIBRATED]["labelled"] == 5 and steps[CALIBRATED]["suggested_threshold"] is None

    # The page, with a login session: bob sees acme's alerts and calibration, not globex's.
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as browser_like:
        await login(browser_like, *BOB)
        page = (await browser_like.get("/dashboard")).text
    assert page.count('class="alert-row"') == 2
    assert runs["acme"] in page and runs["globex"] not in page and "wile" not in page
    assert "812.50" in page and "80 %" in page
    assert 'data-step="support_triage.extract"' in page and "document_summary" not in page
    assert '<strong class="suggested-threshold">0.75</strong>' in page
    assert "suggested 0.75" in page and f"accept {accept:g}" in page
