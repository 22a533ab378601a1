"""Operations, tried as a careless operator would (issue 9, item 8): `docker stop` on a worker
mid-call, killing `tether dev`, and `tether run --wait | jq`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from policies.models import TetherPolicy
from tests.policy_variants import gated
from tests.workflows.test_durability import worker_process, write_policy
from tests.workflows.test_engine import ledger
from tether.core.settings import Settings
from tether.worker import running_worker
from workflows.support_triage_steps import Ticket, TriageResult

pytestmark = pytest.mark.integration

MODEL_CALLS = {"tether.checked_llm_step", "tether.llm_step"}


async def _model_call_started(client: Client, run_id: str, within_s: float = 60) -> None:
    """Until a model-call activity of the run is running on a worker."""
    handle = client.get_workflow_handle(run_id)
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        pending = (await handle.describe()).raw_description.pending_activities
        if any(
            a.activity_type.name in MODEL_CALLS
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for a in pending
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no model call of {run_id} ever started")


async def test_sigterm_drains_the_worker_the_call_in_flight_finishes_once_and_exit_is_0(
    client: Client, settings: Settings, policy: TetherPolicy, tmp_path: Path
) -> None:
    accepting = gated(policy, accept=0.0)
    proc = worker_process(
        settings, write_policy(accepting, tmp_path / "policy.yaml"), latency_ms=3000
    )
    run_id = f"drain-{uuid.uuid4().hex[:8]}"
    try:
        handle = await client.start_workflow(
            "support_triage",
            Ticket(subject="Cannot log in", body="The app crashes after I type my password."),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=TriageResult,
        )
        await _model_call_started(client, run_id)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        log = (settings.home / "worker.log").read_text()
        assert code == 0, f"the worker died instead of draining: {code}\n{log[-2000:]}"
        assert "draining" in log
        drained = [(r.step, r.activity_attempt, r.call) for r in ledger(settings, run_id)]
        assert ("classify", 1, "main") in drained, "the call in flight finished and was charged"

        async with running_worker(client, settings, policy=accepting):
            result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result.status == "completed"
    rows = ledger(settings, run_id)
    identities = [(r.step, r.activity_attempt, r.call) for r in rows]
    assert len(identities) == len(set(identities)), f"duplicated ledger rows: {identities}"
    assert [r.activity_attempt for r in rows if r.step == "classify" and r.call == "main"] == [1]
    failed = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert not failed & set(events), "no activity was lost, cut off or re-run"


# --- tether dev's Temporal server ends with it ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    """Running, not gone and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's")
@pytest.mark.parametrize("kill_with", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_tether_dev_stops_its_temporal_dev_server(
    tmp_path: Path, kill_with: signal.Signals
) -> None:
    temporal_port = _free_port()
    env = os.environ | {
        "TETHER_HOME": str(tmp_path / "home"),
        "TETHER_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TETHER_UI_PORT": str(_free_port()),
        "TETHER_TASK_QUEUE": f"dev-{uuid.uuid4().hex[:8]}",
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "dev", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server: set[int] = set()
    try:
        assert dev.stdout is not None
        seen = []
        for line in dev.stdout:  # until the stack is up
            seen.append(line)
            if "Tether is running" in line:
                break
        else:
            raise AssertionError("tether dev never came up:\n" + "".join(seen[-30:]))
        server = {pid for pid in _children(dev.pid) if _alive(pid)}
        assert server, "tether dev started its own Temporal dev server"
        dev.send_signal(kill_with)
        dev.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in server), "the Temporal dev server was orphaned"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", temporal_port)) != 0, "its port is free again"
    finally:
        if dev.poll() is None:
            dev.kill()
        for pid in server:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
