"""Engine benchmarks: orchestration overhead per step, throughput, and memory of paused runs.

Run ``python -m bench.bench_engine`` (``--quick`` for a smoke run, ``--help`` for the knobs).
Everything runs on a fresh Temporal dev server and SQLite store under a temporary folder; the
worker is the shipped ``tether worker`` in a process of its own. Figures are printed and written
to bench/results/engine.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle

from bench.direct_steps import DirectSteps
from bench.scenario import (
    gather_in_batches,
    percentile,
    ticket,
    write_policy,
)
from bench.worker_process import SOURCE_ROOT, WorkerProcess, read_cpu_seconds
from tether.client import connect
from tether.contracts import RunStatus
from tether.core.settings import Settings
from tether.store.engine import dispose_all, session_scope
from tether.store.reviews import ReviewItem
from tether.temporal_server import SERVER_TUNING, DevServer
from workflows.support_triage_steps import TriageResult

RESULTS_PATH = SOURCE_ROOT / "bench" / "results" / "engine.json"
STEPS_PER_RUN = 3
TARGET_OVERHEAD_P50_MS = 25.0
TARGET_RUNS_PER_S = 20.0
TARGET_PAUSED_RSS_MIB = 300.0
PAUSE_TIMEOUT_S = 600.0

TriageHandle = WorkflowHandle[Any, TriageResult]


@dataclass(frozen=True)
class BenchConfig:
    overhead_runs: int = 50
    warmup_runs: int = 5
    throughput_runs: int = 500
    paused_runs: int = 1000
    batch: int = 100
    throughput_latency_ms: float = 200.0
    one_call_per_step: bool = False


class EngineBench:
    """The three phases; each gets its own task queue, store and fresh worker process."""

    def __init__(self, root: Path, server: DevServer, config: BenchConfig) -> None:
        self.root = root
        self.server = server
        self.config = config

    async def overhead(self) -> dict[str, Any]:
        """Sequential runs at 0 ms latency, against the same steps called in-process."""
        cfg = self.config
        env = self._env("overhead", latency_ms=0, accept=0.0)
        tickets = [ticket(n) for n in range(cfg.warmup_runs + cfg.overhead_runs)]

        direct = DirectSteps(Settings.from_env(env | {"TETHER_HOME": str(self.root / "direct")}))
        try:
            direct_s = [await direct.run(f"direct-{n}", t) for n, t in enumerate(tickets)]
        finally:
            await direct.close()
            dispose_all()

        worker = self._worker(env, "overhead")
        try:
            client = await connect(Settings.from_env(env))
            workflow_s, statuses = [], []
            for n, t in enumerate(tickets):
                started = time.perf_counter()
                result = await client.execute_workflow(
                    "support_triage",
                    t,
                    id=f"bench-overhead-{n}-{uuid.uuid4().hex[:6]}",
                    task_queue=env["TETHER_TASK_QUEUE"],
                    result_type=TriageResult,
                )
                workflow_s.append(time.perf_counter() - started)
                statuses.append(result.status)
        finally:
            worker.stop()

        kept = slice(cfg.warmup_runs, None)
        # Paired by ticket: the same input makes the same model calls both ways.
        pairs = zip(workflow_s[kept], direct_s[kept], strict=True)
        overhead_s = [(wf - d) / STEPS_PER_RUN for wf, d in pairs]
        return {
            "runs": cfg.overhead_runs,
            "warmup_runs": cfg.warmup_runs,
            "completed": statuses[kept].count("completed"),
            "workflow_run_ms": _summary(workflow_s[kept]),
            "direct_run_ms": _summary(direct_s[kept]),
            "overhead_per_step_ms": _summary(overhead_s),
        }

    async def throughput(self) -> dict[str, Any]:
        """Many runs started at once with a realistic latency; runs/s and the worker's peak RSS."""
        cfg = self.config
        env = self._env("throughput", latency_ms=cfg.throughput_latency_ms, accept=0.0)
        worker = self._worker(env, "throughput")
        try:
            client = await connect(Settings.from_env(env))
            idle = worker.memory()
            cpu_before = (worker.cpu_seconds(), self._server_cpu(), time.process_time())
            started = time.perf_counter()
            handles = await self._start_runs(client, env, "throughput", cfg.throughput_runs)
            results = await asyncio.gather(*(h.result() for h in handles))
            elapsed = time.perf_counter() - started
            memory = worker.memory()
            cpu_after = (worker.cpu_seconds(), self._server_cpu(), time.process_time())
        finally:
            worker.stop()
        completed = sum(1 for r in results if r.status == "completed")
        return {
            "runs": cfg.throughput_runs,
            "completed": completed,
            "sim_latency_ms": cfg.throughput_latency_ms,
            "seconds": elapsed,
            "runs_per_s": completed / elapsed,
            "worker_idle_rss_mib": idle.rss_mib,
            "worker_peak_rss_mib": memory.peak_mib,
            "worker_cpu_ms_per_run": (cpu_after[0] - cpu_before[0]) * 1000 / len(handles),
            "server_cpu_ms_per_run": _cpu_per_run(cpu_before[1], cpu_after[1], len(handles)),
            # This process starts the runs and awaits their results, on the same 2 cores.
            "client_cpu_ms_per_run": (cpu_after[2] - cpu_before[2]) * 1000 / len(handles),
        }

    async def paused(self) -> dict[str, Any]:
        """Runs whose first step waits for review; the worker's RSS once all of them wait."""
        cfg = self.config
        env = self._env("paused", latency_ms=0, accept=1.0)
        worker = self._worker(env, "paused")
        try:
            client = await connect(Settings.from_env(env))
            idle = worker.memory()
            started = time.perf_counter()
            handles = await self._start_runs(client, env, "paused", cfg.paused_runs)
            database_url = Settings.from_env(env).resolved_database_url
            paused = await self._wait_until_paused(handles, database_url)
            elapsed = time.perf_counter() - started
            await asyncio.sleep(2)  # let the last workflow tasks complete and their memory settle
            memory = worker.memory()
        finally:
            worker.stop()
            dispose_all()
        return {
            "runs": cfg.paused_runs,
            "paused": paused,
            "seconds_to_pause_all": elapsed,
            "worker_idle_rss_mib": idle.rss_mib,
            "worker_rss_mib": memory.rss_mib,
            "worker_peak_rss_mib": memory.peak_mib,
            "rss_per_paused_run_kib": (memory.rss_mib - idle.rss_mib) * 1024 / max(paused, 1),
        }

    def _env(self, name: str, *, latency_ms: float, accept: float) -> dict[str, str]:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        policy = write_policy(
            home / "policy.yaml", accept=accept, one_call=self.config.one_call_per_step
        )
        return {
            "TETHER_HOME": str(home),
            "TETHER_TEMPORAL_ADDRESS": self.server.address,
            "TETHER_TASK_QUEUE": f"bench-{name}-{uuid.uuid4().hex[:8]}",
            "TETHER_POLICY_FILE": str(policy),
            "TETHER_SIM_LATENCY_MS": f"{latency_ms:g}",
            "TETHER_SIM_FAILURE_RATE": "0",
            # No spoiled answers, so every run makes the same calls (no repair re-asks).
            "TETHER_SIM_QUALITY": "1.0",
        }

    def _worker(self, env: dict[str, str], name: str) -> WorkerProcess:
        worker = WorkerProcess(env, self.root / name / "worker.log")
        worker.start()
        return worker

    def _server_cpu(self) -> float | None:
        pid = self.server.pid
        return read_cpu_seconds(pid) if pid is not None else None

    async def _start_runs(
        self, client: Client, env: dict[str, str], name: str, count: int
    ) -> list[TriageHandle]:
        prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        starts = [
            partial(
                client.start_workflow,
                "support_triage",
                ticket(n),
                id=f"{prefix}-{n}",
                task_queue=env["TETHER_TASK_QUEUE"],
                result_type=TriageResult,
            )
            for n in range(count)
        ]
        return await gather_in_batches(starts, self.config.batch)

    async def _wait_until_paused(self, handles: Sequence[TriageHandle], database_url: str) -> int:
        """Wait until every run reports ``awaiting_review``; return how many do."""
        deadline = time.monotonic() + PAUSE_TIMEOUT_S
        # Counting review items is cheap; the status queries below then confirm each run.
        while time.monotonic() < deadline:
            with session_scope(database_url) as session:
                opened = session.exec(select(func.count()).select_from(ReviewItem)).one()
            if opened >= len(handles):
                break
            await asyncio.sleep(0.5)
        queries = [partial(h.query, "status", result_type=RunStatus) for h in handles]
        while True:
            states = await gather_in_batches(queries, self.config.batch)
            paused = sum(1 for s in states if s.state == "awaiting_review")
            if paused == len(handles) or time.monotonic() > deadline:
                return paused
            await asyncio.sleep(0.5)


def _summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "mean": statistics.fmean(ms)}


def _cpu_per_run(before: float | None, after: float | None, runs: int) -> float | None:
    if before is None or after is None:
        return None
    return (after - before) * 1000 / runs


def report(results: dict[str, Any]) -> str:
    """The results as a table, with each target beside its figure."""
    rows: list[tuple[str, str, str, bool | None]] = []
    if "overhead" in results:
        o = results["overhead"]
        p50, p95 = o["overhead_per_step_ms"]["p50"], o["overhead_per_step_ms"]["p95"]
        wf, direct = o["workflow_run_ms"], o["direct_run_ms"]
        rows += [
            ("overhead per step, p50", f"{p50:.1f} ms", f"<= {TARGET_OVERHEAD_P50_MS:g} ms",
             p50 <= TARGET_OVERHEAD_P50_MS),
            ("overhead per step, p95", f"{p95:.1f} ms", "", None),
            ("  workflow run p50 / p95", f"{wf['p50']:.0f} / {wf['p95']:.0f} ms", "", None),
            ("  direct run p50 / p95", f"{direct['p50']:.0f} / {direct['p95']:.0f} ms", "", None),
        ]  # fmt: skip
    if "throughput" in results:
        t = results["throughput"]
        server_cpu = t["server_cpu_ms_per_run"]
        cpu = (
            f"{t['worker_cpu_ms_per_run']:.0f} / "
            + (f"{server_cpu:.0f}" if server_cpu is not None else "?")
            + f" / {t['client_cpu_ms_per_run']:.0f} ms"
        )
        rows += [
            (f"throughput ({t['runs']} runs, {t['sim_latency_ms']:g} ms)",
             f"{t['runs_per_s']:.1f} runs/s", f">= {TARGET_RUNS_PER_S:g} runs/s",
             t["runs_per_s"] >= TARGET_RUNS_PER_S),
            ("  completed / wall time", f"{t['completed']} / {t['seconds']:.1f} s", "", None),
            ("  worker peak RSS", f"{t['worker_peak_rss_mib']:.0f} MiB", "", None),
            ("  CPU per run: worker / server / client", cpu, "", None),
        ]  # fmt: skip
    if "paused" in results:
        p = results["paused"]
        rows += [
            (f"worker RSS, {p['paused']}/{p['runs']} runs paused", f"{p['worker_rss_mib']:.0f} MiB",
             f"< {TARGET_PAUSED_RSS_MIB:g} MiB", p["worker_rss_mib"] < TARGET_PAUSED_RSS_MIB),
            ("  idle RSS / per paused run",
             f"{p['worker_idle_rss_mib']:.0f} MiB / {p['rss_per_paused_run_kib']:.0f} KiB", "",
             None),
            ("  time to pause all", f"{p['seconds_to_pause_all']:.1f} s", "", None),
        ]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    lines = [f"{'benchmark':<{width}}  {'result':>22}  {'target':>14}  met"]
    for name, value, target, met in rows:
        verdict = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{name:<{width}}  {value:>22}  {target:>14}  {verdict}")
    return "\n".join(lines)


async def run_bench(
    config: BenchConfig, phases: Sequence[str], server_args: Sequence[str] = ()
) -> dict[str, Any]:
    """Start a dev server in a temporary folder and run ``phases`` against it, in order."""
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        root = Path(tmp)
        async with DevServer(root / "temporal.db", tuning=server_args) as server:
            bench = EngineBench(root, server, config)
            results: dict[str, Any] = {}
            for phase in phases:
                print(f"-- {phase} ...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                results[phase] = await getattr(bench, phase)()
                print(f"   {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_engine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--overhead-runs", type=int, default=BenchConfig.overhead_runs)
    parser.add_argument("--warmup-runs", type=int, default=BenchConfig.warmup_runs)
    parser.add_argument("--throughput-runs", type=int, default=BenchConfig.throughput_runs)
    parser.add_argument("--paused-runs", type=int, default=BenchConfig.paused_runs)
    parser.add_argument("--batch", type=int, default=BenchConfig.batch, help="starts at once")
    parser.add_argument(
        "--latency-ms", type=float, default=BenchConfig.throughput_latency_ms,
        help="simulated model latency of the throughput phase",
    )  # fmt: skip
    parser.add_argument(
        "--one-call-per-step", action="store_true",
        help="turn off the default policy's judge and self-consistency samples",
    )  # fmt: skip
    parser.add_argument(
        "--untuned-server", action="store_true",
        help="start the dev server without tether's SERVER_TUNING, on the CLI's defaults",
    )  # fmt: skip
    parser.add_argument("--phases", default="overhead,throughput,paused")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if args.quick:
        args.overhead_runs, args.warmup_runs = 10, 2
        args.throughput_runs, args.paused_runs = 50, 50
    config = BenchConfig(
        overhead_runs=args.overhead_runs,
        warmup_runs=args.warmup_runs,
        throughput_runs=args.throughput_runs,
        paused_runs=args.paused_runs,
        batch=args.batch,
        throughput_latency_ms=args.latency_ms,
        one_call_per_step=args.one_call_per_step,
    )
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    server_args = [] if args.untuned_server else list(SERVER_TUNING)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = asyncio.run(run_bench(config, phases, server_args))
    results["setup"] = asdict(config) | {
        "server_args": server_args,
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        # Other processes on the machine skew every figure; the load average tells.
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "total_seconds": time.perf_counter() - started,
    }
    print(report(results))
    print(
        f"load average {load_before:.1f} before, {results['setup']['load_average_after']:.1f} "
        f"after, on {results['setup']['cpus']} CPUs; {results['setup']['total_seconds']:.0f} s"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
