"""A ``tether worker`` in a process of its own, so its memory and CPU can be read from /proc.

The worker is the shipped one (``python -m tether.cli worker``) started from the source tree
this module belongs to, configured only through ``TETHER_*`` variables, exactly as an operator
would run it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "worker polling task queue"
# Real providers and Slack must never be reached from a benchmark.
_SCRUBBED_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "TETHER_DATABASE_URL",
    "TETHER_POLICY_FILE",
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class MemoryReading:
    """Resident memory of a process in MiB: now (VmRSS) and its peak so far (VmHWM)."""

    rss_mib: float
    peak_mib: float


def read_memory(pid: int) -> MemoryReading:
    """Read a live process's resident and peak resident memory from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # reported in kB
    return MemoryReading(rss_mib=fields["VmRSS"], peak_mib=fields["VmHWM"])


def read_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; fields after its closing parenthesis are fixed.
    after = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after[11]), int(after[12])
    return (utime + stime) / _CLOCK_TICKS


class WorkerProcess:
    """Start, observe and stop one worker process.

    Args:
        env: ``TETHER_*`` variables for the worker (address, home, task queue, policy...).
        log_path: Where the worker's stdout and stderr go.
        startup_timeout: Seconds to wait for the worker to report that it polls.
    """

    def __init__(self, env: dict[str, str], log_path: Path, startup_timeout: float = 60.0) -> None:
        self._env = env
        self._log_path = log_path
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the worker is not running")
        return self._process.pid

    def start(self) -> None:
        """Launch the worker and block until it polls its task queue.

        Raises:
            RuntimeError: The worker exited or did not report readiness in time.
        """
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_VARS}
        env |= self._env
        env["PYTHONPATH"] = str(SOURCE_ROOT)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tether.cli", "worker"],
                cwd=SOURCE_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the worker exited during startup:\n{self._log_tail()}")
            if READY_LINE in self._log_path.read_text(errors="replace"):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the worker did not start polling in time:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        # The log lives in the bench's temporary folder, gone by the time anyone looks.
        text = self._log_path.read_text(errors="replace").strip()
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def memory(self) -> MemoryReading:
        return read_memory(self.pid)

    def cpu_seconds(self) -> float:
        return read_cpu_seconds(self.pid)

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the worker as Ctrl-C would (SIGINT), then SIGKILL after ``grace_s``."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
