"""Run ids are unique for ever, tried as a careless caller would: reusing a finished run's id
through the API or the CLI starts nothing (409 / exit 2) and leaves the ledger and totals as
they were; an id Temporal forgot (or never saw) is still refused by the store's registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import delete
from sqlmodel import Session, col
from temporalio.client import Client
from temporalio.worker import Worker

from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.policy_variants import gated
from tests.review_ui.conftest import BOB, UiServer
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.ledger import BudgetReservation, LedgerEntry, entries_for_run, record_call
from tether.store.run_ids import RunIdClaim
from tether.store.spend import SpendScope, spend_by_scope
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration

TICKET = {
    "subject": "Refund",
    "body": "Please refund order 42, it arrived broken.",
    "tenant": "acme",
}


@pytest.fixture
def accepting(policy: TetherPolicy) -> TetherPolicy:
    return gated(policy, accept=0.0)


@pytest.fixture
async def accepting_worker(
    client: Client, settings: Settings, accepting: TetherPolicy
) -> AsyncIterator[Worker]:
    async with running_worker(client, settings, policy=accepting) as worker:
        yield worker


@pytest.fixture
def api_url(settings: Settings, accepting: TetherPolicy) -> Iterator[str]:
    server = UiServer(create_app(settings, policy=accepting)).start()
    yield server.base_url
    server.stop()


def cli_run(settings: Settings, run_id: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "TETHER_HOME": str(settings.home),
        "TETHER_TEMPORAL_ADDRESS": settings.temporal_address,
        "TETHER_TASK_QUEUE": settings.task_queue,
    }
    ticket = '{"subject": "Refund", "body": "Refund order 42.", "tenant": "acme"}'
    command = ["run", "support_triage", "--input", ticket, "--id", run_id]
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def books(
    settings: Settings, run_id: str
) -> tuple[list[tuple[str, float]], list[tuple[float, float]]]:
    """The run's ledger rows and its run and tenant totals."""
    now = datetime.now(UTC)
    with Session(get_engine(settings.resolved_database_url)) as session:
        rows = [(row.key, row.cost_usd) for row in entries_for_run(session, run_id)]
        totals = spend_by_scope(
            session, [SpendScope.run(run_id), SpendScope.tenant_month("acme", now)]
        )
    return rows, totals


async def executions(client: Client, run_id: str) -> int:
    return len([wf async for wf in client.list_workflows(f"WorkflowId = '{run_id}'")])


async def test_a_finished_runs_id_is_refused_by_the_api_and_the_cli_and_nothing_moves(
    client: Client, settings: Settings, accepting_worker: Worker, api_url: str
) -> None:
    run_id = f"reused-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=api_url, auth=BOB, timeout=30) as api:
        first = await api.post(
            "/api/runs", json={"workflow": "support_triage", "input": TICKET, "run_id": run_id}
        )
        assert first.status_code == 201, first.text
        result = await asyncio.wait_for(
            client.get_workflow_handle(run_id, result_type=TriageResult).result(), 90
        )
        assert result.status == "completed"
        before = books(settings, run_id)
        assert before[0], "the first run was charged"

        again = await api.post(
            "/api/runs", json={"workflow": "support_triage", "input": TICKET, "run_id": run_id}
        )
    assert again.status_code == 409, again.text
    assert "already taken" in again.text and run_id in again.text

    cli = cli_run(settings, run_id)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert cli.stdout == ""
    assert cli.stderr.count("\n") == 1 and "already taken" in cli.stderr

    await asyncio.sleep(2)  # a second run, had one started, would have made its calls by now
    assert books(settings, run_id) == before
    assert await executions(client, run_id) == 1


async def test_an_id_temporal_has_forgotten_is_refused_by_the_store(
    client: Client, settings: Settings, accepting_worker: Worker, api_url: str
) -> None:
    # A run whose Temporal history is past retention: only the ledger still knows its id.
    run_id = f"forgotten-{uuid.uuid4().hex[:8]}"
    with Session(get_engine(settings.resolved_database_url)) as session:
        record_call(
            session,
            LedgerEntry(
                key=f"{run_id}/classify/1/c1/a1/main",
                run_id=run_id,
                workflow="support_triage",
                step="classify",
                tenant="acme",
                call="main",
                activity_attempt=1,
                model="simulated/cheap",
                provider="simulated",
                cost_usd=0.001,
                outcome="ok",
            ),
        )
        session.commit()
    async with httpx.AsyncClient(base_url=api_url, auth=BOB, timeout=30) as api:
        reused = await api.post(
            "/api/runs", json={"workflow": "support_triage", "input": TICKET, "run_id": run_id}
        )
    assert reused.status_code == 409, reused.text
    assert await executions(client, run_id) == 0


async def test_an_id_temporal_remembers_is_refused_even_without_a_registry_row(
    client: Client, settings: Settings, accepting_worker: Worker, api_url: str
) -> None:
    # A run started before the registry existed (straight through Temporal) and finished.
    run_id = f"older-{uuid.uuid4().hex[:8]}"
    await client.execute_workflow(
        "support_triage",
        Ticket(subject="Hi", body="Where is my order?", tenant="acme"),
        id=run_id,
        task_queue=settings.task_queue,
        result_type=TriageResult,
    )
    with Session(get_engine(settings.resolved_database_url)) as session:
        # As if its books were archived and the registry lost: only Temporal still knows it.
        for table in (LedgerEntry, BudgetReservation, RunIdClaim):
            session.execute(delete(table).where(col(table.run_id) == run_id))
        session.commit()
    async with httpx.AsyncClient(base_url=api_url, auth=BOB, timeout=30) as api:
        reused = await api.post(
            "/api/runs", json={"workflow": "support_triage", "input": TICKET, "run_id": run_id}
        )
    assert reused.status_code == 409, reused.text
    assert await executions(client, run_id) == 1
