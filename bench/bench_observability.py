"""Observability overhead per step: metrics, budget alerts and tracing on versus off, side by side
in one run.

Run ``python -m bench.bench_observability`` (``--steps N``). Each round runs the same LLM step
(support_triage's classify, simulated provider without latency, real SQLite store) once per
mode, the order rotating: the activity alone ("off"), and through what a worker with
observability wraps around it ("all"): Tether's ``ObservingInterceptor`` (metrics written in
prometheus-client's multiprocess mode, as deployed), the budget-alert check (awaited inline
as a worker does: beside the step, a tenant's steps checked together at most every 0.5 s; its
CPU lands in the following steps' figures) and Temporal's
``TracingInterceptor`` with the OpenTelemetry SDK and a batch span processor. Modes "metrics"
and "metrics+tracing" add one piece at a time. The figures: the median wall time and the mean
CPU time of the process per step (on a shared machine the CPU time is the work's own cost; the
mean counts background work). Also printed: one step's metrics alone, and one alert check alone
(a store read; what coalescing saves). Results go to bench/results/observability.json. Nothing is asserted; target < 1 ms per
step.
"""

from __future__ import annotations

import os
import tempfile

# prometheus-client picks its value store when first imported: multiprocess files, as deployed.
_MULTIPROC = tempfile.mkdtemp(prefix="tether-bench-metrics-")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _MULTIPROC)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from temporalio.contrib.opentelemetry import TracingInterceptor  # noqa: E402
from temporalio.testing import ActivityEnvironment  # noqa: E402
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput  # noqa: E402

from activities.budget_alerts import BudgetAlerts  # noqa: E402
from activities.deps import ActivityDeps  # noqa: E402
from activities.llm_step import LlmStepActivities  # noqa: E402
from activities.observability import ObservingInterceptor  # noqa: E402
from activities.providers.http import create_http_client  # noqa: E402
from activities.providers.registry import ProviderRegistry  # noqa: E402
from activities.step_metrics import record_step  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from tether.contracts import LlmStepInput  # noqa: E402
from tether.core.settings import Settings  # noqa: E402
from tether.store.audit_key import configure_audit  # noqa: E402
from tether.store.engine import get_engine  # noqa: E402
from workflows.support_triage_steps import CLASSIFY  # noqa: E402

TARGET_MS = 1.0
RESULTS = Path(__file__).parent / "results" / "observability.json"


class _Activity(ActivityInboundInterceptor):
    """The end of the chain: the activity function itself."""

    def __init__(self) -> None:  # no next: this is the last link
        pass

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        return await input.fn(*input.args)


def _step_input(run_id: str, n: int) -> LlmStepInput:
    return LlmStepInput(
        run_id=run_id,
        workflow="support_triage",
        step=CLASSIFY.name,
        tenant="bench",
        end_user="u-bench",
        prompt=CLASSIFY.prompt,
        variables={"subject": f"Order {n} never arrived", "body": "Where is my parcel? " * 20},
        output_model=CLASSIFY.output_path,
        tier=CLASSIFY.tier,
        model="simulated/cheap",
        idempotency_key=f"{run_id}/classify/{n}",
        max_output_tokens=CLASSIFY.max_output_tokens,
        feature="triage",
    )


async def _timed(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


async def main(steps: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="tether-bench-obs-"))
    settings = Settings.from_env(
        {"TETHER_HOME": str(home), "TETHER_SIM_LATENCY_MS": "0", "TETHER_SIM_FAILURE_RATE": "0"}
    )
    configure_audit(settings)
    get_engine(settings.resolved_database_url)
    http = create_http_client(settings)
    deps = ActivityDeps(settings, load_policy(), ProviderRegistry(settings, http))
    llm = LlmStepActivities(deps).llm_step
    alerts = BudgetAlerts(deps, None)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    tracing = TracingInterceptor(provider.get_tracer("bench"))
    chains = {
        "metrics": ObservingInterceptor(deps, None).intercept_activity(_Activity()),
        "metrics+tracing": tracing.intercept_activity(
            ObservingInterceptor(deps, None).intercept_activity(_Activity())
        ),
        "all": tracing.intercept_activity(
            ObservingInterceptor(deps, alerts).intercept_activity(_Activity())
        ),
    }
    env = ActivityEnvironment()
    run_id = f"bench-{uuid.uuid4().hex[:8]}"

    def mode(name: str) -> Callable[[int], Awaitable[object]]:
        if name == "off":
            return lambda n: env.run(llm, _step_input(run_id, n))
        chain = chains[name]

        async def observed(n: int) -> object:
            call = ExecuteActivityInput(
                fn=llm, args=[_step_input(run_id, n)], executor=None, headers={}
            )
            return await env.run(chain.execute_activity, call)

        return observed

    names = ["off", *chains]
    calls = {name: mode(name) for name in names}
    for n in range(10):  # warm up every path
        for name in names:
            await calls[name](-1 - n * 10 - names.index(name))
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for n in range(steps):
        order = names[n % len(names) :] + names[: n % len(names)]  # rotate who goes first
        for name in order:
            figures[name].append(await _timed(lambda name=name, n=n: calls[name](n)))
    await alerts.settle()

    # The pieces alone: one step's metrics, and one alert check (before coalescing).
    sample_input = _step_input(run_id, 0)
    sample = await env.run(llm, _step_input(run_id, 10_000_000))
    alone: dict[str, list[tuple[float, float]]] = {"record_step": [], "alert_check": []}
    for _ in range(steps):

        async def record() -> None:
            record_step(
                sample_input, sample, activity_seconds=0.01, scheduled_at=None, started_at=None
            )

        alone["record_step"].append(await _timed(record))
        alone["alert_check"].append(await _timed(lambda: alerts.check([sample_input])))
    await http.aclose()
    provider.shutdown()

    summary: dict[str, Any] = {"steps": steps, "machine": platform.platform()}
    for name, rows in (*figures.items(), *alone.items()):
        walls, cpus = [w for w, _ in rows], [c for _, c in rows]
        summary[name] = {
            "wall_p50_ms": round(statistics.median(walls), 3),
            "cpu_mean_ms": round(statistics.fmean(cpus), 3),
        }
    for name in chains:
        summary[name]["overhead_wall_p50_ms"] = round(
            summary[name]["wall_p50_ms"] - summary["off"]["wall_p50_ms"], 3
        )
        summary[name]["overhead_cpu_mean_ms"] = round(
            summary[name]["cpu_mean_ms"] - summary["off"]["cpu_mean_ms"], 3
        )
    return summary


def _print(summary: dict[str, Any]) -> None:
    print(f"observability overhead per step ({summary['steps']} steps per mode, interleaved)")
    for name in ("off", "metrics", "metrics+tracing", "all", "record_step", "alert_check"):
        row = summary[name]
        line = f"  {name:16s} wall p50 {row['wall_p50_ms']:8.3f} ms  cpu mean {row['cpu_mean_ms']:7.3f} ms"
        if "overhead_cpu_mean_ms" in row:
            line += (
                f"  overhead: wall p50 {row['overhead_wall_p50_ms']:+.3f} ms,"
                f" cpu {row['overhead_cpu_mean_ms']:+.3f} ms"
            )
        print(line)
    print(f"  target: overhead of 'all' < {TARGET_MS} ms per step")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    summary = asyncio.run(main(args.steps))
    _print(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    cli()
