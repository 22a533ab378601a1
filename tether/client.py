"""The client side of Tether: the one place that starts runs, reads their status and delivers
decisions to them. The CLI, the HTTP API, the review UI and ``tether dev`` all go through here,
with Tether's one data converter.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from activities.pii_presidio import pii_detectors
from policies.effective import pii_settings
from policies.loader import load_policy
from policies.models import TetherPolicy
from policies.pii import Redactor
from tether.contracts import DecisionReceipt, ReviewDecision, RunStatus
from tether.core.errors import InputError, RunIdTakenError, ServerUnreachableError
from tether.core.settings import Settings
from tether.store.engine import session_scope
from tether.store.pii_vault import pii_sealer
from tether.store.run_ids import claim_run_id, release_run_id, run_tenant
from tether.store.run_pii import keep_redaction, redact_input, restored_in_store
from tether.tracing import tracing_interceptors

DATA_CONVERTER = pydantic_data_converter
"""Used everywhere: client, worker, replayer and tests."""

STATUS_QUERY = "status"
DECIDE_UPDATE = "decide"


async def connect(
    settings: Settings, *, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    """Connect to the Temporal frontend, or raise ServerUnreachableError with one clear line.

    Args:
        runtime: The SDK runtime (a worker's records the SDK's metrics; see
            ``tether.temporal_metrics``); default: the SDK's default.
    """
    target = address or settings.temporal_address
    try:
        return await Client.connect(
            target,
            namespace=settings.temporal_namespace,
            data_converter=DATA_CONVERTER,
            interceptors=tracing_interceptors(settings),
            runtime=runtime,
        )
    except Exception as exc:  # the SDK raises RuntimeError with a long transport message
        raise ServerUnreachableError(
            f"no Temporal server reachable at {target} (start one with `tether dev`)"
        ) from exc


RUN_ID_MAX_CHARS = 200
"""A run id names its ledger keys, review ids and store rows, whose columns are sized for it."""
_RUN_ID = re.compile(r"[A-Za-z0-9._:-]+")


def check_run_id(run_id: str) -> str:
    """The run id, or InputError in one line when it is too long or uses other characters."""
    if len(run_id) > RUN_ID_MAX_CHARS:
        raise InputError(f"run id is {len(run_id)} characters; at most {RUN_ID_MAX_CHARS}")
    if not _RUN_ID.fullmatch(run_id):
        raise InputError("run id may use only letters, digits and . _ : -")
    return run_id


DEFAULT_TENANT = "default"
"""The tenant of a run whose input names none (as the workflow's ``begin`` charges it)."""


def new_run_id(workflow: str) -> str:
    return f"{workflow}-{uuid.uuid4().hex[:12]}"


async def start_run(
    client: Client,
    settings: Settings,
    workflow: str,
    payload: BaseModel,
    *,
    run_id: str | None = None,
    policy: TetherPolicy | None = None,
) -> str:
    """Start a run of ``workflow``; returns its run id (the workflow id).

    The input's text is redacted first (``policy.pii``, else the policy ``settings`` name): it
    is written into Temporal's history when the run starts, so personal values are replaced by
    placeholders and their originals kept in the store's PII vault, with the claim of the id.

    The claimed id is released only when the server definitely refused the start (see
    ``_START_REFUSED``); after a timeout or an unknown error it stays claimed, as the start may
    have landed.

    A run id is used once, for ever: every ledger, reservation and review key is derived from
    it. The id is claimed in the store's run registry first (which never forgets), and Temporal
    is asked to reject an id it has seen (running or closed), so a reused id starts nothing.

    Raises:
        RunIdTakenError: A run with this id was started before.
    """
    run_id = check_run_id(run_id) if run_id else new_run_id(workflow)
    url = settings.resolved_database_url
    tenant = getattr(payload, "tenant", None) or DEFAULT_TENANT
    pii = pii_settings(policy or load_policy(settings.policy_file), workflow)
    detectors = await asyncio.to_thread(pii_detectors, pii)  # the first builds Presidio's
    payload, redactor = redact_input(payload, pii, detectors)
    if not await asyncio.to_thread(
        claim_in_store, url, run_id, workflow, tenant, redactor, settings
    ):
        raise RunIdTakenError(_taken(run_id))
    try:
        await client.start_workflow(
            workflow,
            payload,
            id=run_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        raise RunIdTakenError(_taken(run_id)) from None
    except RPCError as exc:
        # Released only when the server definitely refused the start. A timeout, a cancellation
        # or an unknown error may follow a start the server accepted: the id stays claimed.
        if exc.status in _START_REFUSED:
            await asyncio.to_thread(release_in_store, url, run_id)
        raise
    return run_id


# Statuses with which Temporal answers a start it did not accept (nothing was started).
_START_REFUSED = frozenset(
    {
        RPCStatusCode.INVALID_ARGUMENT,
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.UNIMPLEMENTED,
    }
)


def claim_in_store(
    database_url: str,
    run_id: str,
    workflow: str,
    tenant: str,
    redactor: Redactor | None = None,
    settings: Settings | None = None,
) -> bool:
    """Claim the run id; with it, in the same transaction, keep the redacted input's originals
    in the PII vault and audit the redaction."""
    with session_scope(database_url) as session:
        if not claim_run_id(session, run_id, workflow, tenant):
            return False
        if redactor is not None and settings is not None and redactor.mapping:
            sealer = pii_sealer(settings)
            keep_redaction(session, sealer, redactor, run_id=run_id, tenant=tenant, where="input")
        return True


def run_tenant_in_store(database_url: str, run_id: str) -> str | None:
    """The tenant a run was started for, when the registry knows it."""
    with session_scope(database_url) as session:
        return run_tenant(session, run_id)[1]


def release_in_store(database_url: str, run_id: str) -> None:
    with session_scope(database_url) as session:
        release_run_id(session, run_id)


def _taken(run_id: str) -> str:
    return f"run id {run_id!r} is already taken (run ids are never reused); choose another"


async def run_result(
    client: Client,
    run_id: str,
    *,
    settings: Settings | None = None,
    policy: TetherPolicy | None = None,
) -> dict[str, Any]:
    """Wait for the run to close; its result as JSON, or ``status: failed`` with the error.

    With ``settings``, placeholders of redacted personal data in the result are restored to
    their values when the workflow's PII policy allows (``restore_in_output``); without, or
    when it does not, they stay placeholders.
    """
    handle = client.get_workflow_handle(run_id)
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        return {"run_id": run_id, "status": "failed", "error": str(exc.cause or exc)}
    data = jsonable(result)
    if settings is not None:
        workflow = (await handle.describe()).workflow_type
        data = await restored_output(settings, workflow, run_id, data, policy)
    return {"run_id": run_id, **data}


async def restored_output(
    settings: Settings,
    workflow: str,
    run_id: str,
    result: dict[str, Any],
    policy: TetherPolicy | None = None,
) -> dict[str, Any]:
    """``result`` with the run's placeholders restored, when its workflow's policy allows."""
    pii = pii_settings(policy or load_policy(settings.policy_file), workflow)
    if not pii.restore_in_output:
        return result
    return await asyncio.to_thread(restored_in_store, settings, run_id, result)


async def run_status(
    settings: Settings,
    run_id: str,
    client: Client | None = None,
    *,
    policy: TetherPolicy | None = None,
    reveal: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """The run's status: from the live workflow when running, from its result when closed.

    A completed run's ``result`` is its final output, restored as ``run_result`` restores it;
    with ``reveal``, only when ``reveal(workflow)`` says the caller may see the values.
    """
    client = client or await connect(settings)
    handle = client.get_workflow_handle(run_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        raise InputError(f"no run {run_id!r}") from exc
    state = described.status
    if state == WorkflowExecutionStatus.RUNNING:
        status = await handle.query(STATUS_QUERY, result_type=RunStatus)
        return status.model_dump(mode="json")
    base: dict[str, Any] = {"run_id": run_id, "workflow": described.workflow_type}
    if state == WorkflowExecutionStatus.COMPLETED:
        result = jsonable(await handle.result())
        run_state = "completed" if result.get("status") == "completed" else "stopped"
        final = {k: v for k, v in result.items() if k not in ("steps", "cost_usd", "status")}
        if reveal is None or reveal(described.workflow_type):
            final = await restored_output(settings, described.workflow_type, run_id, final, policy)
        return base | {
            "result": final,
            "state": run_state,
            "result_status": result.get("status"),
            "steps": result.get("steps", []),
            "cost_usd": result.get("cost_usd", 0.0),
            "pending": None,
        }
    error = None
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        error = str(exc.cause or exc)
    return base | {
        "state": "failed",
        "error": error,
        "steps": [],
        "pending": None,
        "temporal_status": state.name if state else None,
    }


async def deliver_decision(
    client: Client,
    run_id: str,
    decision: ReviewDecision,
    *,
    update_id: str,
    rpc_timeout: timedelta,
) -> DecisionReceipt:
    """Send a reviewer's decision to the run's ``decide`` update; returns the run's receipt.

    The update id makes redelivery idempotent: Temporal answers a repeated id with the first
    outcome instead of running the update twice.
    """
    handle = client.get_workflow_handle(run_id)
    return await handle.execute_update(
        DECIDE_UPDATE,
        decision,
        id=update_id,
        result_type=DecisionReceipt,
        rpc_timeout=rpc_timeout,
    )


def jsonable(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return value
    return {"result": value}
