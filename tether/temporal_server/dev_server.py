"""Running the Temporal dev server (``temporal server start-dev``) on loopback, persisted in SQLite."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tether.core.errors import ServerUnreachableError
from tether.temporal_server.cache import cache_root, log_tail
from tether.temporal_server.cli_binary import find_temporal_cli

_HOST = "127.0.0.1"


# Settings the dev server runs with. SQLite in WAL mode without an fsync per commit: still safe
# against a killed server process (what a dev server must survive); only an OS crash or power loss
# can drop the last commits. The history service reads its transfer queue at up to 1000/s instead
# of 20/s (that limit delays every workflow and activity task by up to 50 ms). Eager activities:
# the first activity a workflow task schedules starts in the reply to that task. Tasks are
# written to one partition of each task queue: with the default four, a task and the poll waiting
# for it often sit in different partitions and meet only through forwarding, which costs time
# and CPU on every task. Polls still read all four, so a backlog an older server left in the
# other partitions is still delivered.
SERVER_TUNING = (
    "--sqlite-pragma", "journal_mode=wal",
    "--sqlite-pragma", "synchronous=normal",
    "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
    "--dynamic-config-value", "history.transferProcessorMaxPollHostRPS=1000",
    "--dynamic-config-value", "system.enableActivityEagerExecution=true",
    "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
)  # fmt: skip


class DevServer:
    """A Temporal dev server (``temporal server start-dev``) on loopback, persisted in SQLite.

    Use ``async with DevServer(path) as server:`` or ``start()``/``stop()``. Starting again on the
    same ``db_filename`` resumes every workflow that was running, paused or waiting.
    """

    def __init__(
        self,
        db_filename: str | os.PathLike[str],
        *,
        port: int | None = None,
        ui: bool = False,
        ui_port: int | None = None,
        namespace: str = "default",
        search_attributes: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        cli_path: Path | None = None,
        tuning: Sequence[str] = SERVER_TUNING,
    ) -> None:
        """Describe a server; nothing runs until ``start``.

        Args:
            db_filename: SQLite file holding the server's state; its folder also gets the log.
            port: Frontend gRPC port; a free one when omitted.
            ui: Whether to serve the Temporal Web UI.
            ui_port: Web UI port; when omitted, ``port`` + 1000 if ``port`` was given and that
                is free, else a free one.
            namespace: Namespace to create and wait for.
            search_attributes: Custom search attributes, name → type (e.g. ``Keyword``).
            startup_timeout: Seconds to wait for the frontend to answer.
            stop_timeout: Seconds between SIGTERM and SIGKILL when stopping.
            cli_path: Temporal CLI to run; ``find_temporal_cli()`` when omitted.
            tuning: Extra ``start-dev`` arguments; ``SERVER_TUNING`` unless given (``()`` runs
                the CLI's own defaults).
        """
        self.db_filename = Path(db_filename).resolve()
        self.log_path = self.db_filename.with_name(self.db_filename.name + ".server.log")
        self.namespace = namespace
        self._port = port
        self._ui = ui
        self._ui_port = ui_port
        self._search_attributes = dict(search_attributes or {})
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._cli_path = cli_path
        self._tuning = list(tuning)
        self._process: subprocess.Popen[bytes] | None = None
        self._sdk_server: _SdkDevServer | None = None

    @property
    def address(self) -> str:
        """The frontend's ``host:port`` (valid once started)."""
        return f"{_HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs from a CLI binary; ``None`` otherwise."""
        return self._process.pid if self._process is not None else None

    @property
    def ui_url(self) -> str | None:
        """The Web UI's URL, or ``None`` when running headless."""
        return f"http://{_HOST}:{self._ui_port}" if self._ui else None

    def start(self) -> None:
        """Start the server and block until its frontend answers.

        Raises:
            ServerUnreachableError: The port is taken, the server exited, or it did not answer
                within ``startup_timeout``; the message carries the log's last lines.
        """
        if self._spawn():
            # A thread of its own, so this also works when called from inside an event loop.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(asyncio.run, self._wait_until_ready()).result()

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, then SIGKILL after a grace period."""
        if self._sdk_server is not None:
            self._sdk_server.stop()
            self._sdk_server = None
        process, self._process = self._process, None
        if process is None:
            return
        _RUNNING.discard(self)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    async def __aenter__(self) -> DevServer:
        # Finding (maybe building) the CLI is slow and runs in a thread; the server process is
        # started from this thread, because the kernel ties its death signal to the thread that
        # started it (a pool thread may end first).
        cli = self._cli_path or await asyncio.to_thread(find_temporal_cli)
        spawned = self._spawn(cli) if cli is not None else await asyncio.to_thread(self._spawn)
        if spawned:
            try:
                await self._wait_until_ready()
            except BaseException:
                await asyncio.to_thread(self.stop)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _spawn(self, cli: Path | None = None) -> bool:
        """Launch the process; return whether readiness still has to be awaited."""
        if self._process is not None or self._sdk_server is not None:
            raise RuntimeError("this DevServer is already running")
        self.db_filename.parent.mkdir(parents=True, exist_ok=True)
        chosen_port = self._port
        self._port = self._port or _free_port()
        if self._ui and not self._ui_port:
            # Like the CLI: a fixed frontend port P gets its UI on P + 1000 (7233 → 8233).
            beside = self._port + 1000 if chosen_port else None
            free = beside is not None and beside < 65536 and not _is_port_open(_HOST, beside)
            self._ui_port = beside if free else _free_port()
        if _is_port_open(_HOST, self._port):
            raise ServerUnreachableError(f"port {self._port} on {_HOST} is already in use")
        extra = [f"--search-attribute={k}={v}" for k, v in self._search_attributes.items()]
        extra += self._tuning
        cli = cli or self._cli_path or find_temporal_cli()
        if cli is None:
            self._sdk_server = _SdkDevServer(self, extra, download_dir=cache_root())
            self._sdk_server.start()
            return False
        args = [str(cli), "server", "start-dev", "--ip", _HOST, "--port", str(self._port),
                "--db-filename", str(self.db_filename), "--namespace", self.namespace,
                "--log-level", "warn", *extra]  # fmt: skip
        args += ["--ui-port", str(self._ui_port)] if self._ui else ["--headless"]
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(args)}\n".encode())
            log.flush()
            # Own process group, so stop() reaches every child and a terminal's Ctrl-C
            # reaches the owner first (which then stops the server cleanly); and a death
            # signal, so the server ends with its owner even when the owner is killed
            # (SIGKILL runs no cleanup of ours).
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_dies_with_parent(),
            )  # fmt: skip
        if not _RUNNING:
            atexit.unregister(_stop_running_servers)  # registered once, however many servers
            atexit.register(_stop_running_servers)
        _RUNNING.add(self)
        return True

    async def _wait_until_ready(self) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self._startup_timeout
        last_error = "the port never opened"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.stop()
                raise ServerUnreachableError(
                    f"the Temporal dev server exited with code {process.returncode} during "
                    f"startup; last lines of {self.log_path}:\n{log_tail(self.log_path, 15)}"
                )
            if _is_port_open(_HOST, self._port or 0):
                try:
                    client = await Client.connect(self.address, namespace=self.namespace)
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=self.namespace)
                    )
                    return
                except (RuntimeError, RPCError) as exc:
                    last_error = str(exc)
            await asyncio.sleep(0.1)
        self.stop()
        raise ServerUnreachableError(
            f"the Temporal dev server did not answer on {self.address} within "
            f"{self._startup_timeout:.0f}s ({last_error}); last lines of {self.log_path}:\n"
            f"{log_tail(self.log_path, 15)}"
        )


class _SdkDevServer:
    """The SDK-downloaded dev server, driven from a private event loop so stop() can be sync."""

    def __init__(self, owner: DevServer, extra_args: list[str], download_dir: Path) -> None:
        self._owner = owner
        self._extra_args = extra_args
        self._download_dir = download_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._env: WorkflowEnvironment | None = None

    def start(self) -> None:
        owner = self._owner
        self._download_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        start = WorkflowEnvironment.start_local(
            namespace=owner.namespace,
            port=owner._port,
            ui=owner._ui,
            ui_port=owner._ui_port,
            download_dest_dir=str(self._download_dir),
            dev_server_database_filename=str(owner.db_filename),
            dev_server_log_level="warn",
            dev_server_extra_args=self._extra_args,
            dev_server_startup_timeout=timedelta(seconds=owner._startup_timeout),
        )
        try:
            self._env = asyncio.run_coroutine_threadsafe(start, self._loop).result()
        except Exception as exc:
            self.stop()
            raise ServerUnreachableError(f"the SDK's dev server did not start: {exc}") from exc

    def stop(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            asyncio.run_coroutine_threadsafe(env.shutdown(), self._loop).result()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()


# Servers still running when the interpreter exits (an exception, Ctrl-C) are stopped here,
# because their own process group shields them from the terminal's signals.
_RUNNING: set[DevServer] = set()


def _stop_running_servers() -> None:
    for server in list(_RUNNING):
        server.stop()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dies_with_parent() -> Callable[[], None] | None:
    """For ``preexec_fn``: the child gets SIGTERM when the thread that started it ends (its
    process exiting or killed included). Linux only; elsewhere ``None`` (stop() and the atexit
    hook remain)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the owner died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _is_port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
