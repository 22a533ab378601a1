"""Review benchmarks: the decision round trip and the queue page under 10,000 pending items.

Run ``python -m bench.bench_review`` (``--quick`` for a smoke run). A fresh Temporal dev server,
the shipped worker (``tether worker``) and the shipped app (``tether ui``, uvicorn) each run in
a process of their own on loopback, over a SQLite store in a temporary folder. Figures are
printed and written to bench/results/review.json; nothing is asserted.

- decision_round_trip: from sending the HTTP decision (POST /api/reviews/{id}/decision) to the
  run completed, sequentially over N paused runs. Runs pause at their last step, so the time
  measured is the decision's path (API -> update -> workflow -> store -> completion), not
  model calls.
- queue_page_10k: GET / (the queue's first page) for a signed-in reviewer with 10,000 pending
  items in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlmodel import Session, func, select
from temporalio.client import Client

from bench.worker_process import SOURCE_ROOT, WorkerProcess
from policies.loader import load_policy
from tether.client import connect
from tether.core.settings import Settings
from tether.store.engine import dispose_all, get_engine
from tether.store.reviews import ReviewItem
from tether.temporal_server import DevServer
from workflows.support_triage_steps import Ticket

RESULTS_PATH = SOURCE_ROOT / "bench" / "results" / "review.json"
TARGET_ROUND_TRIP_P95_MS = 250.0
TARGET_QUEUE_P95_MS = 150.0
REVIEWER = ("bob", "bob-dev")
PAUSED_STEP = "draft_reply"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def figures(
    name: str, samples_ms: Sequence[float], target_p95: float | None = None
) -> dict[str, Any]:
    result = {
        "n": len(samples_ms),
        "p50_ms": round(percentile(samples_ms, 50), 1),
        "p95_ms": round(percentile(samples_ms, 95), 1),
        "max_ms": round(max(samples_ms), 1),
        "mean_ms": round(statistics.fmean(samples_ms), 1),
    }
    target = f" (target p95 <= {target_p95:g} ms)" if target_p95 else ""
    print(
        f"{name} p50={result['p50_ms']:.1f} ms p95={result['p95_ms']:.1f} ms "
        f"max={result['max_ms']:.1f} ms (n={result['n']}){target}",
        flush=True,
    )
    return result


def write_policy(path: Path) -> Path:
    """The default policy, with every step accepted except support_triage's last one."""
    data = yaml.safe_load(resources.files("policies").joinpath("default.yaml").read_text("utf-8"))
    data["confidence"]["thresholds"] = {"accept": 0.0, "review": 0.0, "escalate": 0.0}
    for section in (data.get("workflows") or {}).values():
        for step in (section.get("steps") or {}).values():
            step.pop("thresholds", None)
    steps = data["workflows"]["support_triage"].setdefault("steps", {})
    steps.setdefault(PAUSED_STEP, {})["thresholds"] = {
        "accept": 1.0,
        "review": 0.0,
        "escalate": 0.0,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class UiProcess:
    """``tether ui`` (uvicorn serving review_ui.app:create_app) in a process of its own."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = env | {"TETHER_UI_PORT": str(self.port), "TETHER_PUBLIC_URL": self.base_url}
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "OPENAI", "ANTHROPIC"))
        }
        env |= self._env | {"PYTHONPATH": str(SOURCE_ROOT)}
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tether.cli", "ui"],
                cwd=SOURCE_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the review app exited during startup; see {self._log_path}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the review app did not start in time; see {self._log_path}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


# --- (a) the decision round trip ------------------------------------------------------------------


async def pause_runs(client: Client, settings: Settings, count: int) -> list[tuple[str, str, str]]:
    """Start ``count`` runs and wait until each waits for review: (run id, review id, digest)."""
    run_ids = [f"bench-review-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for start in range(0, count, 25):
        await asyncio.gather(
            *(
                client.start_workflow(
                    "support_triage",
                    Ticket(
                        subject=f"Refund for order {n}",
                        body=f"I was charged twice for order A-{n}.",
                    ),
                    id=run_id,
                    task_queue=settings.task_queue,
                )
                for n, run_id in enumerate(run_ids[start : start + 25], start)
            )
        )
    engine = get_engine(settings.resolved_database_url)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with Session(engine) as session:
            rows = session.exec(
                select(ReviewItem.run_id, ReviewItem.review_id, ReviewItem.output_digest).where(
                    ReviewItem.status == "pending", ReviewItem.step == PAUSED_STEP
                )
            ).all()
        paused = {run_id: (run_id, review_id, digest) for run_id, review_id, digest in rows}
        if all(run_id in paused for run_id in run_ids):
            return [paused[run_id] for run_id in run_ids]
        await asyncio.sleep(0.25)
    raise RuntimeError("the runs did not all pause for review in time")


async def decision_round_trip(
    client: Client, http: httpx.AsyncClient, paused: list[tuple[str, str, str]]
) -> tuple[list[float], list[float]]:
    """Per run: ms from sending the decision to the run completed, and to the HTTP answer."""
    round_trips: list[float] = []
    answers: list[float] = []
    for run_id, review_id, digest in paused:
        handle = client.get_workflow_handle(run_id)
        started = time.perf_counter()
        response = await http.post(
            f"/api/reviews/{review_id}/decision", json={"kind": "approve", "output_digest": digest}
        )
        answered = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(
                f"decision on {review_id} failed: {response.status_code} {response.text}"
            )
        await handle.result()
        done = time.perf_counter()
        round_trips.append((done - started) * 1000)
        answers.append((answered - started) * 1000)
    return round_trips, answers


# --- (b) the queue page ---------------------------------------------------------------------------


def seed_pending(settings: Settings, count: int) -> None:
    now = datetime.now(UTC)
    workflows = ("support_triage", "document_summary")
    reasons = ("low_confidence", "escalated", "invalid_output", "over_budget")
    rows = []
    for n in range(count):
        review_id = f"seed-{n:05d}-{uuid.uuid4().hex[:6]}:classify:1"
        rows.append(
            ReviewItem(
                review_id=review_id,
                run_id=review_id.split(":")[0],
                workflow=workflows[n % 2],
                step="classify",
                tenant="default",
                reason=reasons[n % 4],
                summary=f"classify: confidence 0.{50 + n % 40} needs review (score below the accept threshold)",
                input_preview={"subject": f"Ticket {n}", "body": "I was charged twice. " * 40},
                output={
                    "category": "billing",
                    "priority": "high",
                    "rationale": "Duplicate charge. " * 8,
                },
                output_digest="sha256:" + f"{n:064d}",
                confidence_score=0.5 + (n % 40) / 100,
                cost_usd=0.0012,
                allowed_roles=["support", "lead"],
                opened_at=now - timedelta(minutes=n % 5000),
                due_at=now + timedelta(hours=72) - timedelta(minutes=n % 6000),
                expires_at=now + timedelta(days=7),
            )
        )
    engine = get_engine(settings.resolved_database_url)
    with Session(engine) as session:
        for start in range(0, count, 2000):
            session.add_all(rows[start : start + 2000])
            session.commit()
        pending = session.exec(
            select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "pending")
        ).one()
    print(f"seeded {count} pending items ({pending} pending in the store)", flush=True)


async def sign_in(http: httpx.AsyncClient, name: str, password: str) -> None:
    page = await http.get("/login")
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    token = page.text[start : page.text.index('"', start)]
    response = await http.post(
        "/login", data={"name": name, "password": password, "csrf_token": token}
    )
    if response.status_code != 303:
        raise RuntimeError(f"login failed: {response.status_code}")


async def timed_gets(
    http: httpx.AsyncClient, path: str, count: int, warmup: int = 10
) -> list[float]:
    samples = []
    for n in range(warmup + count):
        started = time.perf_counter()
        response = await http.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        if n >= warmup:
            samples.append(elapsed)
    return samples


# --- main -----------------------------------------------------------------------------------------


async def main(runs: int, queue_items: int, requests: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="tether-bench-review-"))
    server = DevServer(root / "temporal.db")
    server.start()
    home = root / "review"
    home.mkdir()
    env = {
        "TETHER_HOME": str(home),
        "TETHER_TEMPORAL_ADDRESS": server.address,
        "TETHER_TASK_QUEUE": f"bench-review-{uuid.uuid4().hex[:8]}",
        "TETHER_POLICY_FILE": str(write_policy(home / "policy.yaml")),
        "TETHER_SIM_LATENCY_MS": "0",
        "TETHER_SIM_FAILURE_RATE": "0",
        "TETHER_SIM_QUALITY": "1.0",
    }
    settings = Settings.from_env(env)
    worker = WorkerProcess(env, home / "worker.log")
    ui = UiProcess(env, home / "ui.log")
    results: dict[str, Any] = {}
    try:
        worker.start()
        ui.start()
        client = await connect(settings)
        print(f"pausing {runs} support_triage runs at {PAUSED_STEP}...", flush=True)
        paused = await pause_runs(client, settings, runs)
        async with httpx.AsyncClient(base_url=ui.base_url, auth=REVIEWER, timeout=60) as http:
            round_trips, answers = await decision_round_trip(client, http, paused)
        results["decision_round_trip"] = figures(
            "decision_round_trip", round_trips, TARGET_ROUND_TRIP_P95_MS
        )
        results["decision_http_answer"] = figures("decision_http_answer", answers)

        seed_pending(settings, queue_items)
        async with httpx.AsyncClient(base_url=ui.base_url, timeout=60) as http:
            await sign_in(http, *REVIEWER)
            results["queue_page_10k"] = figures(
                "queue_page_10k", await timed_gets(http, "/", requests), TARGET_QUEUE_P95_MS
            )
            results["queue_page_10k_filtered_deep"] = figures(
                "queue_page_10k_filtered_page40",
                await timed_gets(http, "/?workflow=document_summary&sort=oldest&page=40", requests),
            )
            http.auth = httpx.BasicAuth(*REVIEWER)
            results["api_reviews_10k"] = figures(
                "api_reviews_10k", await timed_gets(http, "/api/reviews?per_page=50", requests)
            )
    finally:
        ui.stop()
        worker.stop()
        dispose_all()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    results["config"] = {"runs": runs, "queue_items": queue_items, "requests": requests}
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run with small numbers")
    args = parser.parse_args()
    runs, items, requests = (20, 1000, 30) if args.quick else (200, 10_000, 200)
    results = asyncio.run(main(runs, items, requests))
    if not args.quick:
        RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
        print(f"figures written to {RESULTS_PATH.relative_to(SOURCE_ROOT)}", flush=True)


if __name__ == "__main__":
    cli()
