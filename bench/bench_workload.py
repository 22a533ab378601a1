"""The support workload: 2,000 tickets through ``support_triage``, guarded versus a baseline.

Run ``python -m bench.bench_workload`` (``--tickets 300`` for a quicker pass, ``--help``).

Both variants replay the same tickets (``bench.workload_tickets``, fixed seed) against the
same stand-in models (``bench.workload_model``) behind the fake OpenAI-compatible server, on
a fresh Temporal dev server, store and ``tether worker`` process each:

- ``baseline``: every step on the strong model, no cache, no routing rules.
- ``guarded``: the embedded default policy as shipped (routing rules, exact and semantic cache,
  PII and injection guards), cheap and strong tiers served by the two stand-in models.

A reviewer bot decides every review the way a careful human would: approve a right answer,
edit a wrong one into the right one. Figures per variant: total model cost, run latency p50 and
p95 (start to result, including waiting for the bot), cache hit rate per step, review rate, and
quality: every final result graded against the generator's truth (category, priority, the
extracted order id, a reply that names the fix and the order). Printed and written to
bench/results/workload.json; nothing is asserted. Target (issue 10): cost at least 60 % lower
with judged quality not worse.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import col, func, select
from temporalio.client import Client

from bench.scenario import percentile
from bench.worker_process import SOURCE_ROOT, WorkerProcess
from bench.workload_model import CHEAP, STRONG, StandInModels, grade_result
from bench.workload_tickets import WorkloadTicket, generate
from policies.loader import load_policy
from tests.fakes.provider_server import FakeProviderServer
from tether.client import connect, deliver_decision, start_run
from tether.contracts import ReviewDecision, RunStatus
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from tether.store.audit_samples import decide_audit_sample
from tether.store.engine import dispose_all, session_scope
from tether.store.examples import AUDIT_SAMPLE
from tether.store.ledger import LedgerEntry
from tether.store.reviews import ReviewItem, get_review
from tether.temporal_server import DevServer

RESULTS_PATH = SOURCE_ROOT / "bench" / "results" / "workload.json"
TARGET_COST_CUT = 0.60
API_KEY = "sk-bench-workload"
PRICES = {
    f"openai/{STRONG}": {"input_per_mtok": 2.50, "output_per_mtok": 10.00},
    f"openai/{CHEAP}": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
}
STATUS_QUERY = "status"


@dataclass
class Outcome:
    ticket: WorkloadTicket
    latency_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    reviews: int = 0
    error: str | None = None


def variant_policy(path: Path, variant: str) -> Path:
    """The default policy with the stand-in models; the baseline without guards that save."""
    text = resources.files("policies").joinpath("default.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["prices"] |= PRICES
    strong, cheap = f"openai/{STRONG}", f"openai/{CHEAP}"
    routing = data.setdefault("routing", {})
    routing["downgrade"] = {strong: cheap}
    if variant.startswith("baseline"):
        routing["tiers"] = {"cheap": [strong], "strong": [strong]}
        # "baseline": the engine as it was, a judge call for every answer; "baseline-decisive":
        # the judge only where it could change the outcome, as the guarded variant does.
        data["confidence"]["judge_when"] = "decisive" if variant.endswith("decisive") else "always"
        data["cache"]["enabled"] = False
        data.pop("route_rules", None)  # every tier is the strong model: nothing to choose
    else:
        routing["tiers"] = {"cheap": [cheap], "strong": [strong]}
    # Quotas would throttle a replay of a day's traffic in minutes; both variants run unlimited.
    if isinstance(data.get("limits"), dict):
        data["limits"]["enabled"] = False
    # Budgets stay on: they are part of what a run costs to check.
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(path)
    return path


class ReviewerBot:
    """Decides a run's pending review as a careful human would, from the ticket's truth."""

    def __init__(self, client: Client, database_url: str) -> None:
        self.client = client
        self.database_url = database_url

    async def decide(self, run_id: str, status: RunStatus, ticket: WorkloadTicket) -> None:
        pending = status.pending
        assert pending is not None
        item = await asyncio.to_thread(self._output, pending.review_id)
        output = dict(item or {})
        edited: dict[str, Any] | None = None
        if pending.reason == "provider_failure":
            kind = "retry"
        elif pending.reason == "over_budget":
            kind = "approve"
        else:
            edited = _corrected(pending.step, output, ticket)
            kind = "approve" if edited is None else "edit"
        decision = ReviewDecision(
            review_id=pending.review_id,
            kind=kind,  # type: ignore[arg-type]
            reviewer="bench-bot",
            reviewer_roles=["support", "lead", "reviewer"],
            output_digest=pending.output_digest,
            edited_output=edited,
            retry_mode="strong_model" if kind == "retry" else None,
            channel="api",
        )
        await deliver_decision(
            self.client,
            run_id,
            decision,
            update_id=f"bench-{pending.review_id}",
            rpc_timeout=timedelta(seconds=30),
        )

    async def work_audits(self, tickets: dict[str, WorkloadTicket], done: asyncio.Event) -> int:
        """Decide the audit queue as it fills, like the run reviews: approve a right answer,
        edit a wrong one (which evicts it from the cache). Returns how many it decided."""
        decided = 0
        while True:
            finished = done.is_set()
            decided += await asyncio.to_thread(self._decide_audits, tickets)
            if finished:
                return decided
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=2.0)

    def _decide_audits(self, tickets: dict[str, WorkloadTicket]) -> int:
        decided = 0
        with session_scope(self.database_url) as session:
            open_items = session.exec(
                select(ReviewItem).where(
                    ReviewItem.reason == AUDIT_SAMPLE, col(ReviewItem.decision).is_(None)
                )
            ).all()
            for item in open_items:
                ticket = tickets.get(item.run_id)
                if ticket is None:
                    continue
                edited = _corrected(item.step, dict(item.output or {}), ticket)
                decide_audit_sample(
                    session,
                    item.review_id,
                    kind="approve" if edited is None else "edit",
                    reviewer="bench-bot",
                    reason=None if edited is None else "corrected by reviewer",
                    edited_output=edited,
                    channel="api",
                    decided_at=datetime.now(UTC),
                )
                decided += 1
        return decided

    def _output(self, review_id: str) -> dict[str, Any] | None:
        with session_scope(self.database_url) as session:
            item = get_review(session, review_id)
            return dict(item.output) if item is not None and item.output else None


def _corrected(step: str, output: dict[str, Any], ticket: WorkloadTicket) -> dict[str, Any] | None:
    """The edited output a reviewer would submit, or None when the answer is right."""
    if step.startswith("classify"):
        right = {"category": ticket.category, "priority": ticket.priority}
        if all(output.get(k) == v for k, v in right.items()):
            return None
        return {"rationale": "corrected by reviewer", **output, **right}
    if step.startswith("extract"):
        if output and output.get("order_id") == ticket.order:
            return None
        base = {"product": None, "sentiment": "neutral", "customer_asks": []}
        return {**base, **output, "order_id": ticket.order}
    if step.startswith("draft_reply"):
        scores = grade_result(ticket.family, ticket.order, {"reply": output.get("reply", "")})
        if scores["reply"] == 1.0:
            return None
        from bench.workload_model import _FIX  # the fix a right reply names

        about = f" about {ticket.order}" if ticket.order else ""
        return {
            "reply": f"Thank you for writing{about}. We will make sure the {_FIX[ticket.family]} "
            "is taken care of today and keep you posted by email.",
            "needs_followup": False,
        }
    return None


class Variant:
    def __init__(
        self,
        root: Path,
        server: DevServer,
        fake: FakeProviderServer,
        name: str,
        details: Path | None = None,
    ) -> None:
        self.name = name
        self.details = details
        home = root / name
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "TETHER_HOME": str(home),
            "TETHER_TEMPORAL_ADDRESS": server.address,
            "TETHER_TASK_QUEUE": f"bench-workload-{name}-{uuid.uuid4().hex[:8]}",
            "TETHER_POLICY_FILE": str(variant_policy(home / "policy.yaml", name)),
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake.openai_base_url,
        }
        self.log = home / "worker.log"

    async def run(self, tickets: list[WorkloadTicket], concurrency: int) -> dict[str, Any]:
        settings = Settings.from_env(self.env)
        worker = WorkerProcess(self.env, self.log)
        worker.start()
        configure_audit(settings)  # the bot's audit decisions are signed like the UI's
        try:
            client = await connect(settings)
            bot = ReviewerBot(client, settings.resolved_database_url)
            gate = asyncio.Semaphore(concurrency)
            started = time.perf_counter()
            done = 0
            runs: dict[str, WorkloadTicket] = {}
            finished = asyncio.Event()
            audits = asyncio.ensure_future(bot.work_audits(runs, finished))

            async def one(ticket: WorkloadTicket) -> Outcome:
                nonlocal done
                async with gate:
                    outcome = await _run_ticket(client, settings, bot, ticket, runs)
                done += 1
                if done % 100 == 0:
                    print(f"   {self.name}: {done}/{len(tickets)}", file=sys.stderr, flush=True)
                return outcome

            outcomes = await asyncio.gather(*(one(t) for t in tickets))
            wall_s = time.perf_counter() - started
            finished.set()
            audited = await audits
            worker_cpu = worker.cpu_seconds()
            spend = await asyncio.to_thread(cost_by_call, settings.resolved_database_url)
        finally:
            worker.stop()
            dispose_all()
        if self.details is not None:
            write_details(
                self.details.with_name(f"{self.details.stem}-{self.name}.jsonl"), outcomes
            )
        return summarise(outcomes, wall_s, worker_cpu) | {
            "cost_by_call": spend,
            "audits_decided": audited,
        }


async def _run_ticket(
    client: Client,
    settings: Settings,
    bot: ReviewerBot,
    ticket: WorkloadTicket,
    runs: dict[str, WorkloadTicket],
) -> Outcome:
    outcome = Outcome(ticket)
    started = time.perf_counter()
    try:
        run_id = await start_run(client, settings, "support_triage", ticket.ticket)
        runs[run_id] = ticket
        handle = client.get_workflow_handle(run_id)
        waiting = asyncio.ensure_future(handle.result())
        decided: set[str] = set()
        while not (await asyncio.wait({waiting}, timeout=2.0))[0]:
            status = await handle.query(STATUS_QUERY, result_type=RunStatus)
            pending = status.pending
            if status.state == "awaiting_review" and pending and pending.review_id not in decided:
                decided.add(pending.review_id)
                outcome.reviews += 1
                await bot.decide(run_id, status, ticket)
        result = waiting.result()
        outcome.result = result if isinstance(result, dict) else dict(result)
    except Exception as exc:  # a failed run is a figure of the bench, not its end
        outcome.error = f"{type(exc).__name__}: {exc}"[:300]
    outcome.latency_s = time.perf_counter() - started
    return outcome


def write_details(path: Path, outcomes: list[Outcome]) -> None:
    """One line per ticket: its truth, each step's model, cache outcome and gate, and its grade,
    to find where quality or money went."""
    with path.open("w", encoding="utf-8") as out:
        for o in outcomes:
            steps = [
                {
                    "name": step.get("name"),
                    "model": step.get("model"),
                    "cost_usd": step.get("cost_usd"),
                    "guards": [
                        f"{g.get('guard')}:{g.get('outcome')}" for g in step.get("guards", [])
                    ],
                    "confidence": (step.get("confidence") or {}).get("score"),
                    "outcome": (step.get("confidence") or {}).get("outcome"),
                }
                for step in o.result.get("steps", [])
            ]
            line = {
                "index": o.ticket.index,
                "family": o.ticket.family,
                "kind": o.ticket.kind,
                "truth": [o.ticket.category, o.ticket.priority, o.ticket.order],
                "got": [o.result.get("category"), o.result.get("priority")],
                "grade": grade_result(o.ticket.family, o.ticket.order, o.result)
                if o.result
                else {},
                "reviews": o.reviews,
                "error": o.error,
                "steps": steps,
            }
            out.write(json.dumps(line) + "\n")


def cost_by_call(database_url: str) -> dict[str, dict[str, float]]:
    """The ledger's spend per kind of call (step, judge, repair, sample) and model: where the
    money went."""
    spend: dict[str, dict[str, float]] = {}
    with session_scope(database_url) as session:
        rows = session.exec(
            select(LedgerEntry.call, LedgerEntry.model, func.sum(LedgerEntry.cost_usd)).group_by(
                LedgerEntry.call, LedgerEntry.model
            )
        ).all()
    for call, model, cost in rows:
        spend.setdefault(call, {})[model] = round(float(cost or 0.0), 4)
    return spend


def summarise(outcomes: list[Outcome], wall_s: float, worker_cpu_s: float) -> dict[str, Any]:
    finished = [o for o in outcomes if o.error is None]
    latencies = [o.latency_s * 1000 for o in finished]
    cost = sum(float(o.result.get("cost_usd", 0.0)) for o in finished)
    steps: dict[str, dict[str, int]] = {}
    models: dict[str, int] = {}
    for o in finished:
        for step in o.result.get("steps", []):
            name = str(step.get("name", "?")).split("#")[0]
            counts = steps.setdefault(name, {"runs": 0, "exact_hit": 0, "semantic_hit": 0})
            counts["runs"] += 1
            for guard in step.get("guards", []):
                if guard.get("guard") == "cache" and guard.get("outcome") in counts:
                    counts[guard["outcome"]] += 1
            model = str(step.get("model") or "none")
            models[model] = models.get(model, 0) + 1
    step_calls = sum(s["runs"] for s in steps.values()) or 1
    hits = sum(s["exact_hit"] + s["semantic_hit"] for s in steps.values())
    grades = [grade_result(o.ticket.family, o.ticket.order, o.result) for o in finished]
    quality = [statistics.fmean(g.values()) for g in grades]
    return {
        "runs": len(outcomes),
        "finished": len(finished),
        "errors": sorted({o.error for o in outcomes if o.error})[:5],
        "completed": sum(1 for o in finished if o.result.get("status") == "completed"),
        "wall_s": round(wall_s, 1),
        "worker_cpu_s": round(worker_cpu_s, 1),
        "cost_usd": round(cost, 4),
        "cost_per_run_usd": round(cost / max(1, len(finished)), 6),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1) if latencies else None,
            "p95": round(percentile(latencies, 95), 1) if latencies else None,
        },
        "cache_hit_rate": round(hits / step_calls, 4),
        "cache_hits_by_step": steps,
        "step_models": models,
        "review_rate": round(sum(1 for o in finished if o.reviews) / max(1, len(finished)), 4),
        "reviews": sum(o.reviews for o in finished),
        "quality": round(statistics.fmean(quality), 4) if quality else None,
        "quality_by_part": {
            part: round(statistics.fmean(g[part] for g in grades), 4)
            for part in ("category", "priority", "facts", "reply")
        }
        if grades
        else {},
        "_quality": quality,
    }


def quality_difference(a: list[float], b: list[float], seed: int = 7) -> dict[str, float]:
    """guarded - baseline mean quality over the same tickets, with a 95 % paired bootstrap."""
    pairs = list(zip(a, b, strict=True))
    rng = random.Random(seed)
    diffs = []
    for _ in range(1000):
        sample = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        diffs.append(statistics.fmean(g - base for base, g in sample))
    diffs.sort()
    return {
        "difference": round(statistics.fmean(g - base for base, g in pairs), 4),
        "ci95_low": round(diffs[25], 4),
        "ci95_high": round(diffs[974], 4),
    }


def report(results: dict[str, Any]) -> str:
    names = [n for n in ("baseline", "baseline-decisive", "guarded") if n in results]
    base, guarded = results["baseline"], results["guarded"]
    cut = 1 - guarded["cost_usd"] / base["cost_usd"] if base["cost_usd"] else 0.0
    diff = results["quality_difference"]
    rows = [
        ("runs finished / completed", "finished", "completed"),
        ("total cost USD", "cost_usd", None),
        ("cost per run USD", "cost_per_run_usd", None),
        ("latency p50 ms", ("latency_ms", "p50"), None),
        ("latency p95 ms", ("latency_ms", "p95"), None),
        ("cache hit rate (steps)", "cache_hit_rate", None),
        ("review rate (runs)", "review_rate", None),
        ("audits decided", "audits_decided", None),
        ("quality (0-1)", "quality", None),
        ("wall s / worker CPU s", "wall_s", "worker_cpu_s"),
    ]

    def cell(data: dict[str, Any], key: Any, extra: str | None) -> str:
        value = data[key[0]][key[1]] if isinstance(key, tuple) else data[key]
        return f"{value} / {data[extra]}" if extra else str(value)

    lines = [f"{'':28}" + "".join(f" {name:>22}" for name in names)]
    for label, key, extra in rows:
        cells = "".join(f" {cell(results[name], key, extra):>22}" for name in names)
        lines.append(f"{label:28}{cells}")
    for name in names:
        spend = results[name].get("cost_by_call", {})
        parts = ", ".join(
            f"{call} {model.rsplit('/', 1)[-1]} ${cost:.2f}"
            for call, models in sorted(spend.items())
            for model, cost in sorted(models.items())
        )
        lines.append(f"{name} spend: {parts}")
    verdict = "met" if cut >= TARGET_COST_CUT and diff["ci95_high"] >= 0 else "MISSED"
    lines.append(
        f"cost cut {cut:.1%} (target >= {TARGET_COST_CUT:.0%}); quality difference "
        f"{diff['difference']:+.4f} (95 % CI {diff['ci95_low']:+.4f} .. {diff['ci95_high']:+.4f}):"
        f" {verdict}"
    )
    if "baseline-decisive" in results and results["baseline-decisive"]["cost_usd"]:
        other = 1 - guarded["cost_usd"] / results["baseline-decisive"]["cost_usd"]
        lines.append(f"cost cut against the baseline with the decisive judge: {other:.1%}")
    return "\n".join(lines)


async def run_bench(
    count: int,
    concurrency: int,
    latency_scale: float,
    variants: list[str],
    details: Path | None = None,
) -> dict[str, Any]:
    tickets = generate(count)
    with tempfile.TemporaryDirectory(prefix="tether-workload-") as tmp:
        root = Path(tmp)
        models = StandInModels(latency_scale=latency_scale)
        with FakeProviderServer(openai_api_key=API_KEY, responder=models) as fake:
            async with DevServer(root / "temporal.db") as server:
                results: dict[str, Any] = {}
                for name in variants:
                    print(f"-- {name} ...", file=sys.stderr, flush=True)
                    results[name] = await Variant(root, server, fake, name, details).run(
                        tickets, concurrency
                    )
                    fake.reset()
    qualities = {name: results[name].pop("_quality") for name in variants}
    results["quality_difference"] = quality_difference(qualities["baseline"], qualities["guarded"])
    kinds = {k: sum(1 for t in tickets if t.kind == k) for k in ("faq", "specific", "complex")}
    results["workload"] = {"tickets": count, "kinds": kinds, "seed": 20261129}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_workload", description=__doc__)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--latency-scale", type=float, default=1.0, help="multiply the stand-in latencies"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--details", type=Path, help="write each ticket's steps to DETAILS-<variant>.jsonl"
    )
    parser.add_argument(
        "--decisive-baseline",
        action="store_true",
        help="also run the baseline with the judge asked only when decisive",
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    variants = ["baseline", "guarded"] + (["baseline-decisive"] if args.decisive_baseline else [])
    results = asyncio.run(
        run_bench(args.tickets, args.concurrency, args.latency_scale, variants, args.details)
    )
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    print(report(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
