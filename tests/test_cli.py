"""The `tether` CLI: bad input gets one line and exit 2 with nothing started; runs and status."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

from policies.models import TetherPolicy
from tests.policy_variants import gated
from tether.core.settings import Settings
from tether.worker import running_worker

TICKET = {"subject": "Refund", "body": "Please refund order 42, it arrived broken."}


def tether(
    settings: Settings, *args: str, address: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "TETHER_HOME": str(settings.home),
        "TETHER_TEMPORAL_ADDRESS": address or settings.temporal_address,
        "TETHER_TASK_QUEUE": settings.task_queue,
    }
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def started_on(client: Client, settings: Settings) -> int:
    return len([wf async for wf in client.list_workflows(f"TaskQueue = '{settings.task_queue}'")])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no_such_flow", "--input", "{}"], "unknown workflow 'no_such_flow'"),
        (["run", "support_triage", "--input", "{not json"], "input is not valid JSON"),
        (
            ["run", "support_triage", "--input", '{"body": "x"}'],
            "support_triage input is invalid: subject: Field required",
        ),
        (
            ["run", "support_triage", "--input", '{"subject": "", "body": "x"}'],
            "subject: String should have at least 1 character",
        ),
        (
            ["run", "support_triage", "--input", "@/nonexistent/ticket.json"],
            "cannot read input file",
        ),
        (["status", "no-such-run"], "no run 'no-such-run'"),
        (
            [
                "run",
                "support_triage",
                "--input",
                '{"subject": "s", "body": "b"}',
                "--id",
                "r" * 201,
            ],
            "run id is 201 characters; at most 200",
        ),
        (
            ["run", "support_triage", "--input", '{"subject": "s", "body": "b"}', "--id", "a b"],
            "run id may use only letters, digits and . _ : -",
        ),
    ],
)
async def test_bad_input_is_one_line_exit_2_and_starts_nothing(
    client: Client, settings: Settings, args: list[str], expected: str
) -> None:
    before = await started_on(client, settings)
    done = await asyncio.to_thread(tether, settings, *args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert await started_on(client, settings) == before


def test_no_server_reachable_is_one_line_exit_2(tmp_path: Path, settings: Settings) -> None:
    done = tether(
        settings, "run", "support_triage", "--input", json.dumps(TICKET), address="127.0.0.1:1"
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "tether: no Temporal server reachable at 127.0.0.1:1 (start one with `tether dev`)"
    )


@pytest.mark.integration
async def test_run_wait_prints_the_result_with_confidence_and_cost_and_status_reads_it(
    client: Client, settings: Settings, policy: TetherPolicy, tmp_path: Path
) -> None:
    ticket_file = tmp_path / "ticket.json"
    ticket_file.write_text(json.dumps(TICKET))
    async with running_worker(client, settings, policy=gated(policy, accept=0.0)):
        done = await asyncio.to_thread(
            tether, settings, "run", "support_triage", "--input", f"@{ticket_file}", "--wait"
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)  # one JSON document, so `| jq` works
        run_id = result["run_id"]
        assert run_id.startswith("support_triage-")
        status = await asyncio.to_thread(tether, settings, "status", run_id)
    assert result["run_id"] == run_id and result["status"] == "completed"
    assert result["cost_usd"] > 0
    assert [s["name"] for s in result["steps"]] == ["classify", "extract", "draft_reply"]
    assert all(0 <= s["confidence"]["score"] <= 1 for s in result["steps"])
    assert status.returncode == 0, status.stderr
    reported = json.loads(status.stdout)
    assert reported["state"] == "completed" and reported["cost_usd"] == result["cost_usd"]


@pytest.mark.integration
async def test_status_of_a_paused_run_names_the_pending_decision(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    async with running_worker(client, settings, policy=gated(policy, accept=1.0)):
        started = await asyncio.to_thread(
            tether, settings, "run", "support_triage", "--input", json.dumps(TICKET)
        )
        run_id = started.stdout.strip()
        for _ in range(100):
            status = json.loads(
                (await asyncio.to_thread(tether, settings, "status", run_id)).stdout
            )
            if status["pending"]:
                break
            await asyncio.sleep(0.2)
    assert status["state"] == "awaiting_review"
    assert status["pending"]["step"] == "classify"
    assert status["pending"]["reason"] == "low_confidence"
    assert status["steps"][0]["confidence"]["score"] < 1
