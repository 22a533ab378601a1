"""The JSON API on the real app and the real Temporal dev server: auth, decisions, runs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.worker import Worker

from policies.models import TetherPolicy
from tests.review_ui.conftest import (
    ALICE,
    BOB,
    CAROL,
    UiServer,
    start_paused_run,
    wait_for_item,
    wait_for_pending,
)
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.reviews import DecisionIntent
from tether.worker import running_worker
from workflows.support_triage_steps import TriageResult

pytestmark = pytest.mark.integration


def intents(settings: Settings) -> list[DecisionIntent]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return list(session.exec(select(DecisionIntent)).all())


async def decide(
    ui: UiServer, who: tuple[str, str], review_id: str, body: dict[str, object]
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=ui.base_url, auth=who, timeout=30) as http:
        return await http.post(f"/api/reviews/{review_id}/decision", json=body)


async def test_two_reviewers_deciding_at_once_exactly_one_wins_and_the_other_is_told(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    await wait_for_item(settings, review_id)

    alice, bob = await asyncio.gather(
        decide(ui, ALICE, review_id, {"kind": "approve", "output_digest": digest}),
        decide(ui, BOB, review_id, {"kind": "reject", "output_digest": digest, "reason": "wrong"}),
    )

    assert sorted([alice.status_code, bob.status_code]) == [200, 409]
    winner, loser = (alice, bob) if alice.status_code == 200 else (bob, alice)
    assert winner.json()["accepted"] is True
    assert winner.json()["receipt"]["review_id"] == review_id
    assert loser.json()["accepted"] is False
    assert "already decided" in loser.json()["message"]
    result = await client.get_workflow_handle(run_id, result_type=TriageResult).result()
    expected = "completed" if winner is alice else "rejected"
    assert result.status == expected


async def test_every_api_call_needs_a_reviewer(
    client: Client, settings: Settings, ui: UiServer
) -> None:
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=10) as anonymous:
        for method, path in [
            ("GET", "/api/reviews"),
            ("GET", "/api/reviews/r:1:1"),
            ("POST", "/api/reviews/r:1:1/decision"),
            ("POST", "/api/runs"),
            ("GET", "/api/runs/some-run"),
        ]:
            response = await anonymous.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"].startswith("Basic")
        wrong = await anonymous.get("/api/reviews", auth=("bob", "not-bobs-password"))
        assert wrong.status_code == 401
        unknown = await anonymous.get("/api/reviews", auth=("mallory", "bob-dev"))
        assert unknown.status_code == 401
        ok = await anonymous.get("/api/reviews", auth=BOB)
        assert ok.status_code == 200
        assert (await anonymous.get("/healthz")).json()["status"] == "ok"


async def test_a_viewer_is_refused_and_nothing_is_sent(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    await wait_for_item(settings, status.pending.review_id)

    response = await decide(
        ui,
        CAROL,
        status.pending.review_id,
        {"kind": "approve", "output_digest": status.pending.output_digest},
    )

    assert response.status_code == 403
    assert response.json()["message"] == (
        "carol may not decide support_triage reviews: needs one of the roles lead, support"
    )
    assert intents(settings) == []
    still = await wait_for_pending(client, run_id)
    assert still.pending is not None and still.pending.review_id == status.pending.review_id


async def test_a_stale_digest_and_a_reject_without_reason_are_refused_with_clear_messages(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    await wait_for_item(settings, review_id)

    stale = await decide(
        ui, BOB, review_id, {"kind": "approve", "output_digest": "sha256:" + "1" * 64}
    )
    assert stale.status_code == 409
    assert stale.json()["message"] == (
        "the output changed since it was shown to you (stale digest); reload and decide again"
    )
    no_reason = await decide(ui, BOB, review_id, {"kind": "reject", "output_digest": digest})
    assert no_reason.status_code == 409
    assert no_reason.json()["message"] == "a rejection needs a reason"
    assert [i.status for i in intents(settings)] == ["refused", "refused"]

    rejected = await decide(
        ui, BOB, review_id, {"kind": "reject", "output_digest": digest, "reason": "not billing"}
    )
    assert rejected.status_code == 200, rejected.text
    result = await client.get_workflow_handle(run_id, result_type=TriageResult).result()
    assert result.status == "rejected"
    assert result.halted_reason == "rejected by bob: not billing"


async def test_a_decision_made_while_no_worker_runs_is_kept_and_a_new_worker_completes_the_run(
    client: Client, settings: Settings, review_policy: TetherPolicy, ui: UiServer
) -> None:
    async with running_worker(client, settings, policy=review_policy):
        run_id, status = await start_paused_run(client, settings)
        assert status.pending is not None
        await wait_for_item(settings, status.pending.review_id)
    # The worker is gone (as if killed): nothing can take the decision now.

    response = await decide(
        ui,
        BOB,
        status.pending.review_id,
        {"kind": "approve", "output_digest": status.pending.output_digest},
    )
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "queued"
    assert [i.status for i in intents(settings)] == ["pending"]

    async with running_worker(client, settings, policy=review_policy):
        handle = client.get_workflow_handle(run_id, result_type=TriageResult)
        result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result.status == "completed"
        assert result.steps[0].decision == "approve"
        for _ in range(100):  # the app's redelivery loop settles the outbox row
            if [i.status for i in intents(settings)] == ["delivered"]:
                break
            await asyncio.sleep(0.1)
        assert [i.status for i in intents(settings)] == ["delivered"]

    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=10) as http:
        item = (await http.get(f"/api/reviews/{status.pending.review_id}")).json()
    assert (item["status"], item["reviewer"], item["decided_via"]) == ("approved", "bob", "api")
    reviewed = [e["kind"] for e in item["timeline"] if e["kind"].startswith("review_")]
    assert reviewed == ["review_opened", "review_decided"]


async def test_start_a_run_through_the_api_and_read_its_status(
    client: Client, settings: Settings, review_worker: Worker, api: httpx.AsyncClient
) -> None:
    unknown = await api.post("/api/runs", json={"workflow": "nope", "input": {}})
    assert unknown.status_code == 400
    assert "unknown workflow 'nope'" in unknown.json()["detail"]
    invalid = await api.post(
        "/api/runs", json={"workflow": "support_triage", "input": {"subject": ""}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"].startswith("support_triage input is invalid: subject:")

    started = await api.post(
        "/api/runs",
        json={
            "workflow": "support_triage",
            "input": {"subject": "Refund", "body": "Refund order 9."},
        },
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    status = await wait_for_pending(client, run_id)
    assert status.pending is not None
    described = (await api.get(f"/api/runs/{run_id}")).json()
    assert described["state"] == "awaiting_review"
    assert described["pending"]["review_id"] == status.pending.review_id
    assert (await api.get("/api/runs/no-such-run")).status_code == 404

    # bob started the run, so bob is its requester and may not decide its review.
    await wait_for_item(settings, status.pending.review_id)
    own = await api.post(
        f"/api/reviews/{status.pending.review_id}/decision",
        json={"kind": "approve", "output_digest": status.pending.output_digest},
    )
    assert own.status_code == 409
    assert own.json()["message"] == "bob requested this run and cannot decide its review"


async def test_the_openapi_document_lists_the_api(ui: UiServer) -> None:
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=10) as http:
        spec = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert docs.status_code == 200
    assert {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/reviews",
        "/api/reviews/{review_id}",
        "/api/reviews/{review_id}/decision",
    } <= set(spec["paths"])
    assert not any(path.startswith("/reviews") for path in spec["paths"])


async def test_the_body_cannot_name_the_reviewer_and_an_idempotency_key_makes_one_decision(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    await wait_for_item(settings, review_id)
    approve = {"kind": "approve", "output_digest": digest}

    async with httpx.AsyncClient(base_url=ui.base_url, auth=ALICE, timeout=30) as alice:
        spoofed = await alice.post(
            f"/api/reviews/{review_id}/decision", json=approve | {"reviewer": "bob"}
        )
        assert spoofed.status_code == 422
        assert intents(settings) == []

        key = {"Idempotency-Key": "ticket-42-approval"}
        first = await alice.post(f"/api/reviews/{review_id}/decision", json=approve, headers=key)
        again = await alice.post(f"/api/reviews/{review_id}/decision", json=approve, headers=key)

    assert first.status_code == again.status_code == 200
    assert first.json()["receipt"] == again.json()["receipt"]
    assert first.json()["receipt"]["reviewer"] == "alice"
    assert [i.status for i in intents(settings)] == ["delivered"]
    result = await client.get_workflow_handle(run_id, result_type=TriageResult).result()
    assert result.status == "completed"
