"""`tether dev`: the whole local stack in one process tree.

A Temporal dev server persisted in ``<home>/temporal.db`` (paused runs survive a restart), one
worker, the review UI, and a few demo runs. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from typing import Any

from temporalio.client import Client

from policies.loader import load_policy
from policies.models import TetherPolicy
from tether.client import connect, start_run
from tether.core.settings import Settings
from tether.demo_data import SAMPLE_TICKETS, sample_document
from tether.store.engine import session_scope
from tether.store.reviews import count_pending_reviews
from tether.temporal_metrics import metrics_runtime
from tether.temporal_server import DevServer
from tether.tracing import configure_tracing
from tether.worker import running_worker

log = logging.getLogger("tether.dev")


async def run_dev_stack(settings: Settings, *, demo_runs: int, exit_when_idle: bool) -> int:
    settings.home.mkdir(parents=True, exist_ok=True)
    policy = load_policy(settings.policy_file)
    host, _, port = settings.temporal_address.rpartition(":")
    server: DevServer | None = None
    if _listening(host or "127.0.0.1", int(port)):
        log.info("using the Temporal server already listening on %s", settings.temporal_address)
    else:
        server = DevServer(settings.home / "temporal.db", port=int(port), ui=True)
        await server.__aenter__()
        log.info(
            "Temporal dev server on %s (web UI %s), state in %s",
            server.address,
            server.ui_url,
            settings.home / "temporal.db",
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        configure_tracing(settings)
        client = await connect(settings, runtime=metrics_runtime())
        async with running_worker(client, settings, policy=policy):
            ui = await _start_ui(settings, client, policy)
            _print_banner(settings, policy)
            waiting = _waiting_reviews(settings)
            if waiting:
                print(f"{waiting} runs from earlier sessions are waiting for review", flush=True)
            run_ids = await _start_demo_runs(client, settings, demo_runs) if demo_runs else []
            if exit_when_idle:
                await _wait_until_idle(client, settings, run_ids, stop)
                await _print_summary(client, settings, run_ids)
            else:
                await stop.wait()
            print(
                "\nstopping: worker, UI and Temporal dev server (paused runs are kept)", flush=True
            )
            if ui is not None:
                ui_server, ui_task = ui
                ui_server.should_exit = True
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(ui_task, timeout=10)
    finally:
        if server is not None:
            await server.__aexit__(None, None, None)
    return 0


def _waiting_reviews(settings: Settings) -> int:
    with session_scope(settings.resolved_database_url) as session:
        return count_pending_reviews(session)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


async def _start_ui(
    settings: Settings, client: Client, policy: TetherPolicy
) -> tuple[Any, asyncio.Task[Any]] | None:
    try:
        import uvicorn

        from review_ui.app import create_app
    except ImportError:
        log.warning("review UI not available in this build")
        return None
    if _listening(settings.ui_host, settings.ui_port):
        log.warning("port %s is busy: the review UI is not started", settings.ui_port)
        return None
    app = create_app(settings, client=client, policy=policy)
    config = uvicorn.Config(app, host=settings.ui_host, port=settings.ui_port, log_level="warning")
    server = uvicorn.Server(config)
    # tether dev owns SIGINT/SIGTERM and stops the UI itself.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server, asyncio.create_task(server.serve())


def _print_banner(settings: Settings, policy: TetherPolicy) -> None:
    lines = [
        "",
        "Tether is running.",
        f"  review queue   {settings.public_url}/",
        f"  API docs       {settings.public_url}/docs",
        f"  Temporal       {settings.temporal_address}",
        f"  state          {settings.home}/",
    ]
    if policy.reviewers:
        lines.append("  dev logins (development only):")
        lines += [
            f"    {r.name} / {r.password}  roles: {', '.join(r.roles)}" for r in policy.reviewers
        ]
    lines.append(
        "  models: simulated provider (no API key set)"
        if not (settings.openai_api_key or settings.anthropic_api_key)
        else ""
    )
    lines.append("Press Ctrl-C to stop; starting again resumes paused runs.")
    print("\n".join(line for line in lines if line is not None), flush=True)


async def _start_demo_runs(client: Client, settings: Settings, count: int) -> list[str]:
    from workflows.document_summary_steps import Document
    from workflows.support_triage_steps import Ticket

    stamp = time.strftime("%H%M%S")
    run_ids = []
    for n in range(count):
        if n % 4 == 3:
            run_id = f"demo-document_summary-{stamp}-{n}"
            payload: Any = Document(document=sample_document(), title="Quarterly operations report")
            workflow = "document_summary"
        else:
            run_id = f"demo-support_triage-{stamp}-{n}"
            payload = Ticket(**SAMPLE_TICKETS[n % len(SAMPLE_TICKETS)], tenant="acme")
            workflow = "support_triage"
        await start_run(client, settings, workflow, payload, run_id=run_id)
        run_ids.append(run_id)
        print(f"started {run_id}", flush=True)
    return run_ids


async def _wait_until_idle(
    client: Client, settings: Settings, run_ids: list[str], stop: asyncio.Event
) -> None:
    """Until every demo run finished or waits for a human."""
    from tether.client import run_status

    while not stop.is_set():
        states = [(await run_status(settings, rid, client))["state"] for rid in run_ids]
        if all(s != "running" for s in states):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def _print_summary(client: Client, settings: Settings, run_ids: list[str]) -> None:
    from tether.client import run_status

    print("\nrun                                          state            cost      steps")
    for rid in run_ids:
        status = await run_status(settings, rid, client)
        steps = ", ".join(
            f"{s['name']}={s['confidence']['score']:.2f}" if s.get("confidence") else s["name"]
            for s in status.get("steps", [])
        )
        cost = status.get("cost_usd") or 0.0
        print(f"{rid:<44} {status['state']:<16} ${cost:<8.5f} {steps}")
