"""`tether status RUN_ID --follow`: a real run's steps printed as they happen, then its end."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta

import pytest
from temporalio.client import Client

from policies.models import TetherPolicy
from tests.review_ui.conftest import pause_at, wait_for_pending
from tests.test_cli import TICKET, tether
from tether.client import deliver_decision
from tether.contracts import ReviewDecision
from tether.core.settings import Settings
from tether.worker import running_worker

pytestmark = pytest.mark.integration


async def test_status_follow_prints_each_step_as_it_happens_and_exits_when_the_run_ends(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    async with running_worker(client, settings, policy=pause_at(policy, "classify")):
        started = await asyncio.to_thread(
            tether, settings, "run", "support_triage", "--input", json.dumps(TICKET)
        )
        run_id = started.stdout.strip()
        follower = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tether.cli",
            "status",
            run_id,
            "--follow",
            env=os.environ
            | {
                "TETHER_HOME": str(settings.home),
                "TETHER_TEMPORAL_ADDRESS": settings.temporal_address,
                "TETHER_TASK_QUEUE": settings.task_queue,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert follower.stdout is not None
        lines: list[str] = []
        # Printed while the run waits for a human: the follower is live, not a replay at the end.
        while not lines or "awaiting_review" not in lines[-1]:
            line = await asyncio.wait_for(follower.stdout.readline(), 30)
            assert line, "the follower exited before the run paused"
            lines.append(line.decode().rstrip())
        assert follower.returncode is None

        status = await wait_for_pending(client, run_id)
        assert status.pending is not None
        decision = ReviewDecision(
            review_id=status.pending.review_id,
            kind="approve",
            reviewer="bob",
            reviewer_roles=["reviewer", "lead"],
            output_digest=status.pending.output_digest,
        )
        await deliver_decision(
            client, run_id, decision, update_id="follow-test", rpc_timeout=timedelta(seconds=10)
        )
        rest, errors = await asyncio.wait_for(follower.communicate(), 60)
        lines.extend(rest.decode().splitlines())

    assert follower.returncode == 0, errors.decode()
    steps = [line.split()[2:4] for line in lines[:-1]]
    assert steps == [
        ["classify", "running"],
        ["classify", "done"],
        ["classify", "awaiting_review"],
        ["classify", "approved"],
        ["extract", "running"],
        ["extract", "done"],
        ["draft_reply", "running"],
        ["draft_reply", "done"],
    ]
    assert [line.split()[0] for line in lines[:-1]] == [f"#{n}" for n in range(1, 9)]
    assert "by bob" in lines[3]
    assert "confidence" in lines[1] and "simulated/cheap" in lines[1]
    assert lines[-1] == f"run {run_id} ended: completed (completed)"
    assert errors == b""  # no progress line: stderr is not a terminal


async def test_status_follow_of_an_unknown_run_is_one_line_and_exit_2(settings: Settings) -> None:
    done = await asyncio.to_thread(tether, settings, "status", "no-such-run", "--follow")
    assert done.returncode == 2
    assert done.stderr.strip() == "tether: no run 'no-such-run'"
