"""The ``tether`` command: dev, worker, run, status, ui, hash-password, db, audit, prune, eval, calibrate.

Bad input (unknown workflow, invalid JSON, input that fails the workflow's schema, no server)
prints one line to stderr and exits 2 before anything is started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

from pydantic import BaseModel

from tether.client import connect, run_result, run_status, start_run
from tether.core.errors import ConfigurationError, InputError, TetherError
from tether.core.settings import Settings
from tether.run_input import parse_run_input

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        return int(args.handler(args, settings) or 0)
    except TetherError as exc:
        print(f"tether: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tether", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev", help="local stack: Temporal dev server, worker, review UI, demo runs"
    )
    dev.add_argument("--no-demo", action="store_true", help="start the stack without demo runs")
    dev.add_argument("--runs", type=int, default=8, help="demo runs to start (default 8)")
    dev.add_argument(
        "--exit-when-idle",
        action="store_true",
        help="stop once every demo run has finished or is waiting for review",
    )
    dev.set_defaults(handler=_cmd_dev)

    worker = sub.add_parser("worker", help="run a worker against TETHER_TEMPORAL_ADDRESS")
    worker.set_defaults(handler=_cmd_worker)

    ui = sub.add_parser("ui", help="serve the review UI and API")
    ui.set_defaults(handler=_cmd_ui)

    run = sub.add_parser("run", help="start a run; prints its run id")
    run.add_argument("workflow")
    run.add_argument("--input", required=True, help="JSON, or @path to a JSON file")
    run.add_argument(
        "--wait",
        action="store_true",
        help="wait and print only the result, one JSON document with the run id inside",
    )
    run.add_argument("--id", help="run id (default: <workflow>-<random>)")
    run.set_defaults(handler=_cmd_run)

    status = sub.add_parser(
        "status", help="a run's state, steps, confidence, cost, pending decision"
    )
    status.add_argument("run_id")
    status.add_argument(
        "--follow",
        action="store_true",
        help="print each step as it happens (from the store); exit when the run ends",
    )
    status.set_defaults(handler=_cmd_status)

    hash_password = sub.add_parser(
        "hash-password",
        help="print an argon2 hash of a password (from the terminal without echo, or a pipe)",
    )
    hash_password.set_defaults(handler=_cmd_hash_password)

    db = sub.add_parser("db", help="the store's schema")
    db_actions = db.add_subparsers(required=True, metavar="ACTION")
    db_upgrade = db_actions.add_parser(
        "upgrade", help="migrate the store (TETHER_DATABASE_URL) to the newest revision"
    )
    db_upgrade.set_defaults(handler=_cmd_db_upgrade)

    audit = sub.add_parser("audit", help="the audit log")
    audit_actions = audit.add_subparsers(required=True, metavar="ACTION")
    audit_verify = audit_actions.add_parser(
        "verify", help="check every row's HMAC, the seqs and the head; exit 1 naming a bad row"
    )
    audit_verify.set_defaults(handler=_cmd_audit_verify)
    prune = sub.add_parser(
        "prune", help="delete dead store rows once (as workers do every retention.every)"
    )
    prune.set_defaults(handler=_cmd_prune)
    _eval_parsers(sub)
    return parser


def _eval_parsers(sub: Any) -> None:
    evaluate = sub.add_parser(
        "eval", help="run a step over a dataset: field/exact scores, LLM judge, kappa, A/B"
    )
    evaluate.add_argument("workflow")
    evaluate.add_argument("step")
    evaluate.add_argument(
        "--dataset", required=True, help="FILE.jsonl, or 'reviews' for the step's labelled examples"
    )
    evaluate.add_argument(
        "--variant", help="compare with prompt=VERSION|FILE.json and/or model=PROVIDER/MODEL"
    )
    evaluate.add_argument("--no-judge", action="store_true", help="field and exact checks only")
    evaluate.add_argument("--metric", choices=["judge", "fields", "exact"])
    evaluate.add_argument("--out", default="eval-reports", help="where JSON and HTML go")
    evaluate.add_argument("--concurrency", type=int, default=4)
    evaluate.add_argument("--limit", type=int, help="only the first N examples")
    evaluate.set_defaults(handler=_cmd_eval)

    calibrate = sub.add_parser(
        "calibrate", help="precision of auto-accept per threshold, from reviews and audits"
    )
    calibrate.add_argument("workflow")
    calibrate.add_argument("step")
    calibrate.add_argument("--target", type=float, help="precision wanted (default: policy)")
    calibrate.add_argument("--min-support", type=int, default=5)
    calibrate.set_defaults(handler=_cmd_calibrate)


def _in_loop(work: Coroutine[Any, Any, int]) -> int:
    """Run ``work``, turning Tether errors into the one-line exit-2 answer inside the loop.

    The Temporal client's native runtime must not outlive the loop: an exception escaping
    ``asyncio.run`` would keep the client alive in its traceback until interpreter exit.
    """

    async def guarded() -> int:
        try:
            return await work
        except TetherError as exc:
            print(f"tether: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return asyncio.run(guarded())


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from policies.access import as_service

    payload = as_service(parse_run_input(args.workflow, args.input), settings.service_identity)
    return _in_loop(_run(settings, args.workflow, payload, args.wait, args.id))


async def _run(
    settings: Settings, workflow: str, payload: BaseModel, wait: bool, run_id: str | None
) -> int:
    client = await connect(settings)
    run_id = await start_run(client, settings, workflow, payload, run_id=run_id)
    if not wait:
        print(run_id, flush=True)
        return 0
    from tether.follow_cli import with_progress

    # Only the result, so `tether run --wait ... | jq` reads one document; the id is inside it
    # (the progress line goes to stderr, and only on a terminal).
    result = {"run_id": run_id} | await with_progress(
        settings, client, run_id, run_result(client, run_id, settings=settings)
    )
    print(json.dumps(result, indent=2), flush=True)
    return 1 if result.get("status") == "failed" else 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    if args.follow:
        from tether.follow_cli import follow

        return _in_loop(follow(settings, args.run_id))

    async def _status() -> int:
        print(json.dumps(await run_status(settings, args.run_id), indent=2))
        return 0

    return _in_loop(_status())


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from tether.temporal_metrics import metrics_runtime
    from tether.tracing import configure_tracing
    from tether.worker import running_worker

    log = logging.getLogger("tether.worker")

    async def _serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # `docker stop` and Kubernetes send SIGTERM: drain instead of dying mid-call.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        configure_tracing(settings)
        client = await connect(settings, runtime=metrics_runtime())
        async with running_worker(client, settings):
            log.info("worker polling task queue %r", settings.task_queue)
            await stop.wait()
            log.info(
                "draining: polling stopped, running activities get up to %.0f s to finish",
                settings.worker_shutdown_grace_s,
            )
        log.info("worker stopped")
        return 0

    return _in_loop(_serve())


def _cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from policies.loader import load_policy
    from review_ui.app import startup_problem

    problem = settings.ui_bind_problem() or startup_problem(
        settings, load_policy(settings.policy_file)
    )
    if problem is not None:
        raise ConfigurationError(problem)

    from tether.store.audit_key import audit_signer

    audit_signer(settings)  # no audit key outside dev: one line and exit 2, before serving
    from tether.tracing import configure_tracing

    configure_tracing(settings)  # decisions sent from the UI are spans too
    uvicorn.run(
        "review_ui.app:create_app", factory=True, host=settings.ui_host, port=settings.ui_port
    )
    return 0


def _cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from policies.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise InputError("the two passwords differ")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise InputError("an empty password")
    print(hash_password(password))
    return 0


def _cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from tether.store.engine import upgrade_database

    print(f"store at revision {upgrade_database(settings.resolved_database_url)}")
    return 0


def _cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from tether.store.audit_key import verify_store

    verdict = verify_store(settings)
    if not verdict.ok:
        print(f"tether: audit log tampered: {verdict.problem}", file=sys.stderr)
        return 1
    print(f"audit log intact: {verdict.rows} rows, head at seq {verdict.head_seq}")
    return 0


def _cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from policies.loader import load_policy
    from tether.store.retention import prune_store

    policy = load_policy(settings.policy_file)
    print(prune_store(settings.resolved_database_url, policy.retention).line())
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from tether.evaluation import EvalRequest, evaluate, terminal_table

    request = EvalRequest(
        workflow=args.workflow,
        step=args.step,
        dataset=args.dataset,
        variant=args.variant,
        judge=not args.no_judge,
        metric=args.metric,
        out_dir=Path(args.out),
        concurrency=max(1, args.concurrency),
        limit=args.limit,
    )

    async def _evaluate() -> int:
        report, json_path, html_path = await evaluate(settings, request)
        print(terminal_table(report))
        print(f"reports: {json_path} {html_path}")
        return 0

    return _in_loop(_evaluate())


def _cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from tether.evaluation import calibration_for, calibration_table

    report = calibration_for(settings, args.workflow, args.step, args.target, args.min_support)
    print(calibration_table(args.workflow, args.step, report))
    return 0


def _cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from tether.dev import run_dev_stack

    problem = settings.ui_bind_problem()
    if problem is not None:
        raise ConfigurationError(problem)
    return asyncio.run(
        run_dev_stack(
            settings, demo_runs=0 if args.no_demo else args.runs, exit_when_idle=args.exit_when_idle
        )
    )


def run() -> NoReturn:
    """Console entry point.

    Exits without interpreter finalization: the Temporal SDK's native runtime can crash
    (``PyGILState_Release``) while Python finalizes after an RPC error, turning a clean exit 2
    into an abort. All work, output and cleanup are finished by the time ``main`` returns.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
