"""Engine benchmarks: orchestration overhead per step, throughput, and memory of paused runs.

Run ``python -m bench.bench_engine`` (``--quick`` for a smoke run). Everything runs on a fresh
Temporal dev server and SQLite store under a temporary folder; the worker is the shipped
``tether worker`` in a process of its own. Figures are printed and written to
bench/results/engine.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from string import Formatter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import ActivityEnvironment

from activities.checkpoint import CheckpointActivities
from activities.contracts import CheckpointInput, LlmStepInput, LlmStepResult, RunStatus
from activities.deps import ActivityDeps
from activities.llm_step import LlmStepActivities
from activities.providers.http import create_http_client
from activities.providers.registry import ProviderRegistry
from bench.worker_process import SOURCE_ROOT, WorkerProcess, read_cpu_seconds
from policies.loader import load_policy
from tether.client import connect
from tether.settings import Settings
from tether.store.engine import dispose_all, session_scope
from tether.store.reviews import ReviewItem
from tether.temporal_server import DevServer, find_temporal_cli
from workflows.steps import LlmStep
from workflows.support_triage import CLASSIFY, DRAFT_REPLY, EXTRACT, Ticket, TriageResult

RESULTS_PATH = SOURCE_ROOT / "bench" / "results" / "engine.json"
STEPS_PER_RUN = 3
TARGET_OVERHEAD_P50_MS = 25.0
TARGET_RUNS_PER_S = 20.0
TARGET_PAUSED_RSS_MIB = 300.0

# Proposed for DevServer: SQLite in WAL mode without an fsync per commit (still safe against a
# killed process, which is what a dev server must survive), the history service reading its
# transfer queue more than 20 times a second (that limit adds up to 50 ms before every workflow
# and activity task), and eager activities (the first activity starts in the workflow task's reply).
TUNED_SERVER_ARGS = (
    "--sqlite-pragma", "journal_mode=wal",
    "--sqlite-pragma", "synchronous=normal",
    "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
    "--dynamic-config-value", "history.transferProcessorMaxPollHostRPS=1000",
    "--dynamic-config-value", "system.enableActivityEagerExecution=true",
)  # fmt: skip

T = TypeVar("T")

_SUBJECTS = (
    ("Refund for order {n}", "I was charged twice for order A-{n}. Please refund the duplicate."),
    ("App crashes on login", "Since the update the app crashes with error {n} when I log in."),
    ("Where is my package?", "Tracking for parcel {n} has not moved in a week. Any news?"),
    ("Password reset", "I cannot reset my password; the link for account {n} has expired."),
    ("Invoice question", "Invoice INV-{n} shows a price different from my subscription plan."),
)


def ticket(n: int) -> Ticket:
    """A realistic, distinct support ticket (distinct texts keep the simulated answers varied)."""
    subject, body = _SUBJECTS[n % len(_SUBJECTS)]
    return Ticket(
        subject=subject.format(n=n),
        body=body.format(n=n),
        customer_id=f"customer-{n % 50}",
        tenant="bench",
    )


def write_policy(path: Path, *, accept: float) -> Path:
    """Write the default policy with every confidence threshold moved, and validate it.

    ``accept=0`` accepts every valid step; ``accept=1.0`` sends every step to review.
    """
    text = resources.files("policies").joinpath("default.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["confidence"]["thresholds"] = {"accept": accept, "review": 0.0, "escalate": 0.0}
    for section in (data.get("workflows") or {}).values():
        for step in (section.get("steps") or {}).values():
            step.pop("thresholds", None)  # the top-level thresholds must apply everywhere
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(path)
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def gather_in_batches(
    factories: Sequence[Callable[[], Awaitable[T]]], batch: int
) -> list[T]:
    results: list[T] = []
    for start in range(0, len(factories), batch):
        results += await asyncio.gather(*(make() for make in factories[start : start + batch]))
    return results


# --- the same three steps, called directly in one process ----------------------------------------


class DirectSteps:
    """support_triage's checkpoint + LLM step activities, called in-process without Temporal."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http = create_http_client(settings)
        policy = load_policy(settings.policy_file)
        deps = ActivityDeps(settings, policy, ProviderRegistry(settings, self._http))
        self._checkpoint = CheckpointActivities(deps).cost_checkpoint
        self._llm = LlmStepActivities(deps).llm_step
        self._env = ActivityEnvironment()

    async def run(self, run_id: str, t: Ticket) -> float:
        """Run the three steps as the workflow would; return the seconds taken."""
        text = {"subject": t.subject, "body": t.body}
        started = time.perf_counter()
        classified = await self._step(run_id, t, CLASSIFY, text)
        facts = await self._step(run_id, t, EXTRACT, text)
        asks = (facts.output or {}).get("customer_asks") or []
        known = text | {k: str(v) for k, v in (classified.output or {}).items()}
        known["asks"] = "; ".join(asks) or "(not stated)"
        # Only the variables the template names, as the workflow passes them.
        wanted = {name for _, name, _, _ in Formatter().parse(DRAFT_REPLY.prompt.user) if name}
        await self._step(run_id, t, DRAFT_REPLY, {k: v for k, v in known.items() if k in wanted})
        return time.perf_counter() - started

    async def _step(
        self, run_id: str, t: Ticket, step: LlmStep[Any], variables: dict[str, str]
    ) -> LlmStepResult:
        key = f"{run_id}/{step.name}/1"
        input_chars = sum(len(v) for v in variables.values())
        input_chars += len(step.prompt.system) + len(step.prompt.user)
        checkpoint = await self._env.run(
            self._checkpoint,
            CheckpointInput(
                run_id=run_id,
                workflow="support_triage",
                step=step.name,
                tenant=t.tenant or "default",
                end_user=t.customer_id,
                tier=step.tier,
                input_chars=input_chars,
                max_output_tokens=step.max_output_tokens,
                reservation_key=key,
            ),
        )
        return await self._env.run(
            self._llm,
            LlmStepInput(
                run_id=run_id,
                workflow="support_triage",
                step=step.name,
                tenant=t.tenant or "default",
                end_user=t.customer_id,
                prompt=step.prompt,
                variables=variables,
                output_model=step.output_path,
                tier=step.tier,
                model=checkpoint.route[0],
                idempotency_key=f"{key}/m0",
                max_output_tokens=step.max_output_tokens,
                reservation_key=checkpoint.reservation_key,
            ),
        )

    async def close(self) -> None:
        await self._http.aclose()


# --- the bench ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    overhead_runs: int
    warmup_runs: int
    throughput_runs: int
    paused_runs: int
    batch: int
    throughput_latency_ms: float


class EngineBench:
    """Owns the dev server and the temporary folder; each phase gets a fresh worker."""

    def __init__(self, root: Path, server: DevServer, config: BenchConfig) -> None:
        self.root = root
        self.server = server
        self.config = config

    def _settings(self, name: str, *, latency_ms: float, accept: float) -> dict[str, str]:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        return {
            "TETHER_HOME": str(home),
            "TETHER_TEMPORAL_ADDRESS": self.server.address,
            "TETHER_TASK_QUEUE": f"bench-{name}-{uuid.uuid4().hex[:8]}",
            "TETHER_POLICY_FILE": str(write_policy(home / "policy.yaml", accept=accept)),
            "TETHER_SIM_LATENCY_MS": f"{latency_ms:g}",
            "TETHER_SIM_FAILURE_RATE": "0",
            # Quality 1.0: no spoiled answers, so every run makes the same calls (no repairs).
            "TETHER_SIM_QUALITY": "1.0",
        }

    def _worker(self, env: dict[str, str], name: str) -> WorkerProcess:
        worker = WorkerProcess(env, self.root / name / "worker.log")
        worker.start()
        return worker

    def _server_cpu(self) -> float | None:
        # The dev server's pid is not public API; CPU figures are only a diagnostic.
        process = getattr(self.server, "_process", None)
        return read_cpu_seconds(process.pid) if process is not None else None

    async def overhead(self) -> dict[str, Any]:
        cfg = self.config
        env = self._settings("overhead", latency_ms=0, accept=0.0)
        total = cfg.warmup_runs + cfg.overhead_runs
        tickets = [ticket(n) for n in range(total)]

        direct_env = dict(env, TETHER_HOME=str(self.root / "overhead-direct"))
        direct = DirectSteps(Settings.from_env(direct_env))
        try:
            direct_s = [await direct.run(f"direct-{n}", t) for n, t in enumerate(tickets)]
        finally:
            await direct.close()
            dispose_all()

        worker = self._worker(env, "overhead")
        try:
            client = await connect(Settings.from_env(env))
            statuses: list[str] = []
            workflow_s = []
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

        measured = slice(cfg.warmup_runs, None)
        pairs = list(zip(workflow_s[measured], direct_s[measured], strict=True))
        overhead_ms = [(wf - d) * 1000 / STEPS_PER_RUN for wf, d in pairs]
        return {
            "runs": cfg.overhead_runs,
            "warmup_runs": cfg.warmup_runs,
            "completed": statuses[measured].count("completed"),
            "workflow_run_ms": _summary(workflow_s[measured]),
            "direct_run_ms": _summary(direct_s[measured]),
            "overhead_per_step_ms": {
                "p50": percentile(overhead_ms, 50),
                "p95": percentile(overhead_ms, 95),
                "mean": statistics.fmean(overhead_ms),
            },
        }

    async def throughput(self) -> dict[str, Any]:
        cfg = self.config
        env = self._settings("throughput", latency_ms=cfg.throughput_latency_ms, accept=0.0)
        worker = self._worker(env, "throughput")
        try:
            client = await connect(Settings.from_env(env))
            idle = worker.memory()
            cpu_worker, cpu_server = worker.cpu_seconds(), self._server_cpu()
            started = time.perf_counter()
            handles = await self._start_runs(client, env, "throughput", cfg.throughput_runs)
            results = await gather_in_batches(
                [lambda h=h: h.result() for h in handles], batch=len(handles)
            )
            elapsed = time.perf_counter() - started
            memory = worker.memory()
            cpu_worker = worker.cpu_seconds() - cpu_worker
            server_now = self._server_cpu()
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
            "worker_cpu_s": cpu_worker,
            "server_cpu_s": (
                server_now - cpu_server if server_now is not None and cpu_server is not None else None
            ),
        }

    async def paused(self) -> dict[str, Any]:
        cfg = self.config
        env = self._settings("paused", latency_ms=0, accept=1.0)
        worker = self._worker(env, "paused")
        try:
            client = await connect(Settings.from_env(env))
            idle = worker.memory()
            started = time.perf_counter()
            handles = await self._start_runs(client, env, "paused", cfg.paused_runs)
            paused = await self._wait_until_paused(
                handles, Settings.from_env(env).resolved_database_url
            )
            elapsed = time.perf_counter() - started
            await asyncio.sleep(2)  # let the worker settle (timers set, tasks completed)
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

    async def _start_runs(
        self, client: Client, env: dict[str, str], name: str, count: int
    ) -> list[WorkflowHandle[Any, TriageResult]]:
        prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        return await gather_in_batches(
            [
                lambda n=n: client.start_workflow(
                    "support_triage",
                    ticket(n),
                    id=f"{prefix}-{n}",
                    task_queue=env["TETHER_TASK_QUEUE"],
                    result_type=TriageResult,
                )
                for n in range(count)
            ],
            batch=self.config.batch,
        )

    async def _wait_until_paused(
        self, handles: Sequence[WorkflowHandle[Any, TriageResult]], database_url: str
    ) -> int:
        """Wait until every run reports ``awaiting_review``; return how many do."""
        deadline = time.monotonic() + 600
        # Polling the review table is cheap; the status queries below confirm once it is full.
        while time.monotonic() < deadline:
            with session_scope(database_url) as session:
                opened = session.exec(select(func.count()).select_from(ReviewItem)).one()
            if opened >= len(handles):
                break
            await asyncio.sleep(0.5)
        while True:
            states = await gather_in_batches(
                [lambda h=h: h.query("status", result_type=RunStatus) for h in handles],
                batch=self.config.batch,
            )
            paused = sum(1 for s in states if s.state == "awaiting_review")
            if paused == len(handles) or time.monotonic() > deadline:
                return paused
            await asyncio.sleep(0.5)


def _summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "mean": statistics.fmean(ms)}


def _report(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, bool | None]] = []
    if "overhead" in results:
        o = results["overhead"]
        p50 = o["overhead_per_step_ms"]["p50"]
        wf, direct = o["workflow_run_ms"], o["direct_run_ms"]
        rows += [
            ("overhead per step, p50", f"{p50:.1f} ms", f"<= {TARGET_OVERHEAD_P50_MS:g} ms",
             p50 <= TARGET_OVERHEAD_P50_MS),
            ("overhead per step, p95", f"{o['overhead_per_step_ms']['p95']:.1f} ms", "", None),
            ("  workflow run p50 / p95", f"{wf['p50']:.0f} / {wf['p95']:.0f} ms", "", None),
            ("  direct run p50 / p95", f"{direct['p50']:.0f} / {direct['p95']:.0f} ms", "", None),
        ]  # fmt: skip
    if "throughput" in results:
        t = results["throughput"]
        server_cpu = t["server_cpu_s"] if t["server_cpu_s"] is not None else float("nan")
        rows += [
            (f"throughput ({t['runs']} runs, {t['sim_latency_ms']:g} ms)",
             f"{t['runs_per_s']:.1f} runs/s", f">= {TARGET_RUNS_PER_S:g} runs/s",
             t["runs_per_s"] >= TARGET_RUNS_PER_S),
            ("  completed / wall time", f"{t['completed']} / {t['seconds']:.1f} s", "", None),
            ("  worker peak RSS", f"{t['worker_peak_rss_mib']:.0f} MiB", "", None),
            ("  worker / server CPU", f"{t['worker_cpu_s']:.1f} / {server_cpu:.1f} s", "", None),
        ]  # fmt: skip
    if "paused" in results:
        p = results["paused"]
        rows += [
            (f"worker RSS, {p['paused']} runs paused", f"{p['worker_rss_mib']:.0f} MiB",
             f"< {TARGET_PAUSED_RSS_MIB:g} MiB", p["worker_rss_mib"] < TARGET_PAUSED_RSS_MIB),
            ("  idle RSS / per paused run",
             f"{p['worker_idle_rss_mib']:.0f} MiB / {p['rss_per_paused_run_kib']:.0f} KiB", "",
             None),
            ("  time to pause all", f"{p['seconds_to_pause_all']:.1f} s", "", None),
        ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"{'benchmark':<{width}}  {'result':>22}  {'target':>14}  met"]
    for name, value, target, met in rows:
        verdict = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{name:<{width}}  {value:>22}  {target:>14}  {verdict}")
    return "\n".join(lines)


def cli_with_extra_args(folder: Path, extra: Sequence[str]) -> Path | None:
    """A wrapper around the Temporal CLI that appends ``extra`` to its command line.

    It lets the bench measure a server tuning through ``DevServer``'s public ``cli_path``.
    Returns None when there is no CLI binary to wrap (the SDK's download is used then).
    """
    cli = find_temporal_cli()
    if cli is None:
        return None
    wrapper = folder / "temporal"
    args = " ".join(shlex.quote(a) for a in extra)
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(str(cli))} "$@" {args}\n')
    wrapper.chmod(0o755)
    return wrapper


async def run_bench(
    config: BenchConfig, phases: Sequence[str], server_args: Sequence[str] = ()
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        root = Path(tmp)
        cli = cli_with_extra_args(root, server_args) if server_args else None
        async with DevServer(root / "temporal.db", cli_path=cli) as server:
            bench = EngineBench(root, server, config)
            results: dict[str, Any] = {}
            for phase in phases:
                print(f"-- {phase} ...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                results[phase] = await getattr(bench, phase)()
                print(f"   done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_engine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--overhead-runs", type=int, default=50)
    parser.add_argument("--warmup-runs", type=int, default=5)
    parser.add_argument("--throughput-runs", type=int, default=500)
    parser.add_argument("--paused-runs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="concurrent starts per batch")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="throughput latency")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--tuned-server",
        action="store_true",
        help="start the dev server with TUNED_SERVER_ARGS (the proposed DevServer tuning)",
    )
    parser.add_argument(
        "--phases", default="overhead,throughput,paused", help="comma-separated phases to run"
    )
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
    )
    started = time.perf_counter()
    phases = [p for p in args.phases.split(",") if p]
    server_args = list(TUNED_SERVER_ARGS) if args.tuned_server else []
    results = asyncio.run(run_bench(config, phases, server_args))
    results["server_args"] = server_args
    results["machine"] = {
        "cpus": _cpu_count(),
        "python": platform.python_version(),
        "total_seconds": time.perf_counter() - started,
    }
    print(_report(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 0


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
