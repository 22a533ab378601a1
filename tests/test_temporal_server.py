"""The local Temporal server: obtaining the CLI, the dev server's lifecycle, time skipping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    ListWorkflowExecutionsRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from tether.core.errors import ConfigurationError, ServerUnreachableError
from tether.temporal_server import (
    SQLITE_DRIVER_VERSION,
    TEMPORAL_CLI_VERSION,
    DevServer,
    cached_cli_path,
    ensure_time_skipping_server,
    find_temporal_cli,
    start_time_skipping_environment,
    time_skipping_server_lib,
)
from tether.worker import TetherPlugin, build_worker

REPO = Path(__file__).parent.parent  # no resolve(): workflow sandboxes re-import this module


@workflow.defn
class Greet:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


@workflow.defn
class AwaitApproval:
    """Records a note, then waits for a decision: a paused run in miniature."""

    def __init__(self) -> None:
        self._decision: str | None = None

    @workflow.run
    async def run(self, note: str) -> str:
        await workflow.wait_condition(lambda: self._decision is not None)
        return f"{note}: {self._decision}"

    @workflow.signal
    def decide(self, decision: str) -> None:
        self._decision = decision


@workflow.defn
class SlaTimer:
    """Sleeps for five hours and reports how much workflow time went by."""

    @workflow.run
    async def run(self) -> float:
        started = workflow.now()
        await workflow.sleep(timedelta(hours=5))
        return (workflow.now() - started).total_seconds()


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _port_answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


async def _first_task_completed(client: Client, workflow_id: str) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return any(
        event.HasField("workflow_task_completed_event_attributes") for event in history.events
    )


def cached_cli_path_under(cache_home: Path) -> Path:
    build = f"temporal-cli-{TEMPORAL_CLI_VERSION}-sqlite-{SQLITE_DRIVER_VERSION}"
    return cache_home / "tether" / build / "temporal"


@pytest.fixture
def clean_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No override, an empty cache and a PATH without `temporal`; returns the PATH folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.delenv("TETHER_TEMPORAL_CLI", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_override_wins_over_path_and_cache(clean_lookup: Path, tmp_path: Path, monkeypatch):
    _executable(clean_lookup / "temporal")
    _executable(cached_cli_path())
    override = _executable(tmp_path / "elsewhere" / "my-temporal")
    monkeypatch.setenv("TETHER_TEMPORAL_CLI", str(override))

    assert find_temporal_cli() == override


def test_override_naming_a_missing_file_is_a_configuration_error(clean_lookup: Path, monkeypatch):
    monkeypatch.setenv("TETHER_TEMPORAL_CLI", str(clean_lookup / "nope"))

    with pytest.raises(ConfigurationError, match="TETHER_TEMPORAL_CLI"):
        find_temporal_cli()


def test_path_wins_over_cache(clean_lookup: Path):
    on_path = _executable(clean_lookup / "temporal")
    _executable(cached_cli_path())

    assert find_temporal_cli() == on_path


def test_cached_build_is_found_under_xdg_cache_home(clean_lookup: Path, tmp_path: Path):
    cached = _executable(cached_cli_path())

    assert cached == cached_cli_path_under(tmp_path / "cache")
    assert find_temporal_cli() == cached


def test_nothing_found_without_building_means_sdk_download(clean_lookup: Path):
    assert find_temporal_cli(build=False) is None


@pytest.mark.integration
@pytest.mark.timeout(900)  # a cold Go build cache takes minutes; a warm one seconds
def test_concurrent_ensures_build_the_cli_once(tmp_path: Path):
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None
    )
    if go is None:
        pytest.skip("Go is not installed: the build step is for machines that have it")
    # Keep Go's own caches where they are; only Tether's cache folder is fresh.
    go_env = subprocess.run(
        [go, "env", "GOCACHE", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.split()
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "GOCACHE": go_env[0],
        "GOMODCACHE": go_env[1],
        "PATH": f"{Path(go).parent}:/usr/bin:/bin",
    }
    env.pop("TETHER_TEMPORAL_CLI", None)
    command = [sys.executable, "-m", "tether.temporal_server", "ensure"]
    runs = [
        subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate() for run in runs]

    built = cached_cli_path_under(tmp_path / "cache")
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert [out.decode().strip() for out, _ in outputs] == [str(built), str(built)]
    assert sum(err.decode().count("building the Temporal CLI") for _, err in outputs) == 1
    version = subprocess.run([built, "--version"], capture_output=True, text=True, check=True)
    assert f"temporal version {TEMPORAL_CLI_VERSION}" in version.stdout
    modules = subprocess.run(
        [go, "version", "-m", str(built)], capture_output=True, text=True, check=True
    ).stdout
    assert f"modernc.org/sqlite\tv{SQLITE_DRIVER_VERSION}" in modules
    assert not list(built.parent.glob(".build-*"))


@pytest.mark.integration
async def test_dev_server_runs_a_workflow(tmp_path: Path):
    async with DevServer(tmp_path / "temporal.db") as server:
        client = await Client.connect(server.address)
        queue = f"q-{uuid.uuid4()}"
        async with build_worker(client, queue, TetherPlugin(extra_workflows=[Greet])):
            result = await client.execute_workflow(
                Greet.run, "tether", id=f"greet-{uuid.uuid4()}", task_queue=queue
            )
        # SERVER_TUNING is applied: the database runs in WAL mode.
        assert (tmp_path / "temporal.db-wal").exists()
        assert server.pid is not None

    assert result == "hello tether"
    assert server.address.startswith("127.0.0.1:")
    assert not _port_answers(server.address)


async def _cancel_calls_mid_query(client: Client, seconds: float, callers: int = 16) -> int:
    """Send starts, lists and describes whose deadlines (0.2-3.2 ms) pass while the server works."""
    service = client.workflow_service
    stop = asyncio.get_running_loop().time() + seconds
    sent = 0

    async def caller(number: int) -> None:
        nonlocal sent
        call = 0
        while asyncio.get_running_loop().time() < stop:
            call += 1
            deadline = timedelta(microseconds=200 + (call * 37 + number * 101) % 3000)
            request: object
            if call % 3 == 0:
                request, method = (
                    StartWorkflowExecutionRequest(
                        namespace="default",
                        workflow_id=f"cancelled-{number}-{call}",
                        workflow_type=WorkflowType(name="never-run"),
                        task_queue=TaskQueue(name=f"nobody-{uuid.uuid4()}"),
                        request_id=str(uuid.uuid4()),
                    ),
                    service.start_workflow_execution,
                )
            elif call % 3 == 1:
                request = ListWorkflowExecutionsRequest(namespace="default", page_size=100)
                method = service.list_workflow_executions
            else:
                request = DescribeNamespaceRequest(namespace="default")
                method = service.describe_namespace
            sent += 1
            with contextlib.suppress(RPCError):
                await method(request, timeout=deadline, retry=False)  # type: ignore[arg-type]

    await asyncio.gather(*(caller(number) for number in range(callers)))
    return sent


@pytest.mark.integration
@pytest.mark.timeout(180)
async def test_the_dev_server_keeps_answering_after_calls_cancelled_mid_query(tmp_path: Path):
    # A call whose deadline passes while the server reads its database interrupts that read. The
    # CLI's own SQLite driver could keep the interrupt on its only connection: every later call
    # failed with "interrupted (9)" until a restart. It took a whole CI run down.
    async with DevServer(tmp_path / "temporal.db") as server:
        client = await Client.connect(server.address)
        sent = await _cancel_calls_mid_query(client, seconds=15)
        answers = []
        for _ in range(5):
            try:
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default"),
                    timeout=timedelta(seconds=5),
                    retry=False,
                )
                answers.append("ok")
            except RPCError as exc:
                answers.append(exc.message)
            await asyncio.sleep(0.5)
        assert answers == ["ok"] * 5, f"after {sent} cancelled calls: {answers}"
        queue = f"q-{uuid.uuid4()}"
        async with build_worker(client, queue, TetherPlugin(extra_workflows=[Greet])):
            result = await client.execute_workflow(
                Greet.run, "again", id=f"greet-{uuid.uuid4()}", task_queue=queue
            )

    assert result == "hello again"


@pytest.mark.integration
@pytest.mark.parametrize("ending", ["stopped", "killed"])
async def test_waiting_workflow_survives_a_server_restart(tmp_path: Path, ending: str):
    db = tmp_path / "temporal.db"
    workflow_id = f"approval-{uuid.uuid4()}"
    queue = f"q-{uuid.uuid4()}"
    async with DevServer(db) as first:
        client = await Client.connect(first.address)
        async with build_worker(client, queue, TetherPlugin(extra_workflows=[AwaitApproval])):
            handle = await client.start_workflow(
                AwaitApproval.run, "refund #42", id=workflow_id, task_queue=queue
            )
            # Wait until the run is really parked on its condition before pulling the plug.
            for _ in range(200):
                if await _first_task_completed(client, workflow_id):
                    break
                await asyncio.sleep(0.05)
            if ending == "killed":  # no shutdown at all: SIGKILL, as in a crash
                assert first.pid is not None
                os.killpg(first.pid, signal.SIGKILL)

    async with DevServer(db) as second:
        client = await Client.connect(second.address)
        async with build_worker(client, queue, TetherPlugin(extra_workflows=[AwaitApproval])):
            handle = client.get_workflow_handle(workflow_id)
            await handle.signal(AwaitApproval.decide, "approved")
            result = await handle.result()

    assert result == "refund #42: approved"


@pytest.mark.integration
def test_sync_start_and_stop_free_the_port(tmp_path: Path):
    server = DevServer(tmp_path / "temporal.db", ui=True)
    server.start()
    try:
        assert _port_answers(server.address)
        assert server.ui_url is not None
        assert _port_answers(server.ui_url.removeprefix("http://"))
    finally:
        server.stop()

    assert not _port_answers(server.address)
    assert "start-dev" in server.log_path.read_text()


@pytest.mark.integration
async def test_a_taken_port_is_refused_with_a_clear_error(tmp_path: Path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ServerUnreachableError, match=rf"port {port} .* already in use"):
            async with DevServer(tmp_path / "temporal.db", port=port):
                pass


@pytest.mark.integration
async def test_a_server_that_dies_at_startup_reports_its_log(tmp_path: Path):
    not_a_file = tmp_path / "a-folder.db"
    not_a_file.mkdir()  # SQLite cannot open a folder, so the real server exits at once

    with pytest.raises(ServerUnreachableError, match="exited with code") as failure:
        async with DevServer(not_a_file):
            pass

    assert "last lines of" in str(failure.value)


@pytest.mark.integration
async def test_a_hung_server_times_out_and_is_killed(tmp_path: Path):
    pid_file = tmp_path / "pid"
    hung = tmp_path / "hung-temporal"
    # Ignores SIGTERM (as do its children) and never listens: only SIGKILL ends it.
    hung.write_text(f"#!/bin/sh\ntrap '' TERM\necho $$ > {pid_file}\nexec sleep 300\n")
    hung.chmod(0o755)
    server = DevServer(
        tmp_path / "temporal.db", cli_path=hung, startup_timeout=1.0, stop_timeout=0.5
    )

    with pytest.raises(ServerUnreachableError, match=r"did not answer .* within 1s"):
        async with server:
            pass

    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_wrapper_looks_for_the_jars_where_ensure_puts_them(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TETHER_TEST_SERVER_LIB", None)

    run = subprocess.run(
        [REPO / "scripts" / "temporal-test-server", "0"], env=env, capture_output=True, text=True
    )

    assert run.returncode == 1
    assert f"no jars in {time_skipping_server_lib()};" in run.stderr


@pytest.mark.integration
@pytest.mark.timeout(600)  # the first run fetches the jars from Maven Central
async def test_time_skipping_server_skips_five_hours(tmp_path: Path):
    if shutil.which("java") is None:
        pytest.skip("java is not installed: the time-skipping server is a Java program")
    if await asyncio.to_thread(ensure_time_skipping_server) is None:
        pytest.skip("the time-skipping server's jars could not be fetched (is mvn installed?)")

    async with await start_time_skipping_environment() as env:
        queue = f"q-{uuid.uuid4()}"
        async with build_worker(env.client, queue, TetherPlugin(extra_workflows=[SlaTimer])):
            elapsed = await env.client.execute_workflow(
                SlaTimer.run, id=f"sla-{uuid.uuid4()}", task_queue=queue
            )

    assert elapsed >= 5 * 3600


@pytest.mark.integration
def test_offline_with_only_the_older_build_that_build_is_used_with_a_warning(
    clean_lookup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    go = shutil.which("go", path=os.environ.get("PATH")) or "/usr/local/go/bin/go"
    if not Path(go).is_file():
        pytest.skip("Go is not installed: the build step is for machines that have it")
    older = _executable(
        tmp_path / "cache" / "tether" / f"temporal-cli-{TEMPORAL_CLI_VERSION}" / "temporal"
    )
    # No module can be fetched: an empty module cache and no proxy, as on a plane.
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "empty-modcache"))
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOFLAGS", "-modcacherw")

    found = find_temporal_cli()

    assert found == older
    assert "using the older build" in capsys.readouterr().err
    assert not cached_cli_path().exists()
    # Only where the pinned build cannot be made: a caller that builds itself is not given it.
    assert find_temporal_cli(build=False) is None
