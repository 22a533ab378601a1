"""Review UI fixtures: the real app under uvicorn on a loopback port, and runs that pause."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlmodel import Session
from temporalio.client import Client
from temporalio.worker import Worker

from policies.models import GateThresholds, TetherPolicy
from review_ui.app import create_app
from tests.policy_variants import gated
from tether.contracts import RunStatus
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.reviews import ReviewItem
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket

ALICE = ("alice", "alice-dev")  # roles reviewer, support: may decide support_triage
BOB = ("bob", "bob-dev")  # roles reviewer, lead: may decide support_triage
CAROL = ("carol", "carol-dev")  # role viewer: may only look


class UiServer:
    """The review app served by uvicorn on 127.0.0.1 (an ephemeral port) in a thread."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="review-ui", daemon=True)
        self.base_url = ""

    def start(self) -> UiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the review app did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def pause_at(policy: TetherPolicy, step: str, workflow: str = "support_triage") -> TetherPolicy:
    """Every step accepted automatically except ``step``, which always waits for a human."""
    base = gated(policy, accept=0.0)
    section = base.workflows[workflow]
    always = GateThresholds(accept=1.0, review=0.0, escalate=0.0)
    current = section.steps.get(step)
    paused = (
        current.model_copy(update={"thresholds": always})
        if current is not None
        else base.confidence.model_copy(update={"thresholds": always})
    )
    section = section.model_copy(update={"steps": section.steps | {step: paused}})
    return base.model_copy(update={"workflows": base.workflows | {workflow: section}})


@pytest.fixture
def review_policy(policy: TetherPolicy) -> TetherPolicy:
    """support_triage pauses at its first step, classify; everything else runs through."""
    return pause_at(policy, "classify")


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


@pytest.fixture
async def api(ui: UiServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client authenticated as bob (HTTP Basic)."""
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as http:
        yield http


async def start_paused_run(
    client: Client, settings: Settings, *, requester: str | None = None
) -> tuple[str, RunStatus]:
    """Start support_triage and wait until it pauses for review."""
    run_id = f"triage-{uuid.uuid4().hex[:10]}"
    ticket = Ticket(
        subject="Charged twice",
        body="I was billed twice for order 1234 of the Pro plan. Please refund one charge.",
        requester=requester,
    )
    await client.start_workflow("support_triage", ticket, id=run_id, task_queue=settings.task_queue)
    return run_id, await wait_for_pending(client, run_id)


async def wait_for_pending(client: Client, run_id: str, timeout_s: float = 30.0) -> RunStatus:
    handle = client.get_workflow_handle(run_id)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = await handle.query("status", result_type=RunStatus)
        if status.pending is not None:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never paused for review")


async def wait_for_item(settings: Settings, review_id: str, timeout_s: float = 10.0) -> ReviewItem:
    """The review row, once the open_review activity has written it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with Session(get_engine(settings.resolved_database_url)) as session:
            from tether.store.reviews import get_review

            item = get_review(session, review_id)
            if item is not None:
                return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"review {review_id} never reached the store")


def seed_items(settings: Settings, count: int, **fields: Any) -> list[str]:
    """Write ``count`` pending review rows straight to the store (queue tests need no runs)."""
    now = datetime.now(UTC)
    ids = []
    rows = []
    for n in range(count):
        review_id = f"seed-{uuid.uuid4().hex[:8]}:classify:1"
        values: dict[str, Any] = {
            "review_id": review_id,
            "run_id": review_id.split(":")[0],
            "workflow": "support_triage",
            "step": "classify",
            "tenant": "default",
            "reason": "low_confidence",
            "summary": f"classify: confidence 0.6{n % 10} needs review",
            "output": {"category": "billing", "urgency": "high", "rationale": "refund"},
            "output_digest": "sha256:" + "0" * 64,
            "confidence_score": 0.5 + (n % 40) / 100,
            "cost_usd": 0.0012,
            "allowed_roles": ["support", "lead"],
            "opened_at": now - timedelta(hours=n % 72),
            "due_at": now + timedelta(hours=72) - timedelta(hours=n % 96),
            "expires_at": now + timedelta(days=7),
        }
        values.update(fields)
        rows.append(ReviewItem(**values))
        ids.append(review_id)
    with Session(get_engine(settings.resolved_database_url)) as session:
        session.add_all(rows)
        session.commit()
    return ids


async def login(http: httpx.AsyncClient, name: str, password: str) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = await http.get("/login")
    token = _csrf_from(page.text)
    response = await http.post(
        "/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"}
    )
    assert response.status_code == 303, response.text
    queue = await http.get("/")
    assert queue.status_code == 200
    return _csrf_from(queue.text)


def _csrf_from(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def form_value(html: str, name: str, nth: int = 0) -> str:
    """The value of the ``nth`` hidden input called ``name`` in a page."""
    marker = f'name="{name}" value="'
    start = -1
    for _ in range(nth + 1):
        start = html.index(marker, start + 1)
    start += len(marker)
    return html[start : html.index('"', start)]
