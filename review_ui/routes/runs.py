"""``/api/runs``: start a run and read its status, through the client-side module."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field, field_validator
from temporalio.client import Client

from policies.models import ALL_TENANTS
from review_ui.access import as_caller, check_may_start
from review_ui.context import ReviewDesk
from review_ui.deps import ApiReviewer, Desk
from review_ui.errors import error_responses
from review_ui.pii_reveal import may_reveal
from tether import client as runs_client
from tether.client import new_run_id, run_status
from tether.contracts import JsonObject
from tether.core.errors import InputError, RunIdTakenError, ServerUnreachableError
from tether.run_input import check_depth, parse_run_input

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=error_responses(401, 422, 503))

_STATUS_DEADLINE_S = 5.0


class StartRun(BaseModel):
    workflow: str = Field(description="A workflow from the catalog, e.g. support_triage.")
    input: JsonObject = Field(description="The workflow's input, validated against its schema.")
    run_id: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")

    # Before any re-encoding: deep nesting is a 422, never a RecursionError (500).
    _input_depth = field_validator("input", mode="before")(check_depth)


class RunStarted(BaseModel):
    run_id: str
    workflow: str
    status_url: str


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RunStarted,
    responses=error_responses(400, 403, 409, 413),
)
async def start_run(body: StartRun, desk: Desk, reviewer: ApiReviewer) -> RunStarted:
    """Start a run; the input is checked exactly as ``tether run`` checks it."""
    from workflows.catalog import CATALOG

    if body.workflow not in CATALOG:
        known = ", ".join(sorted(CATALOG))
        raise HTTPException(400, f"unknown workflow {body.workflow!r}; known: {known}")
    check_may_start(desk.policy, reviewer, body.workflow)
    try:
        payload = parse_run_input(body.workflow, json.dumps(body.input))
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    # The caller is the requester (nobody approves their own run), for one of their tenants.
    payload = as_caller(payload, reviewer)
    client = await _client(desk)
    run_id = body.run_id or new_run_id(body.workflow)
    try:
        await runs_client.start_run(
            client, desk.settings, body.workflow, payload, run_id=run_id, policy=desk.policy
        )
    except RunIdTakenError as exc:
        raise HTTPException(409, str(exc)) from None
    return RunStarted(run_id=run_id, workflow=body.workflow, status_url=f"/api/runs/{run_id}")


@router.get("/{run_id}", responses=error_responses(404))
async def get_run(run_id: str, desk: Desk, reviewer: ApiReviewer) -> dict[str, Any]:
    """The run's state, steps with confidence, cost and pending decision (as ``tether status``).
    A run of a tenant the caller does not serve is answered as one that does not exist; so is a
    run the registry does not know (started before it), except to all-tenant logins."""
    tenant = await asyncio.to_thread(
        runs_client.run_tenant_in_store, desk.settings.resolved_database_url, run_id
    )
    known = tenant is not None and reviewer.sees_tenant(tenant)
    if not known and not (tenant is None and ALL_TENANTS in reviewer.tenants):
        raise HTTPException(404, f"no run {run_id!r}")
    client = await _client(desk)
    try:
        return await asyncio.wait_for(
            run_status(
                desk.settings,
                run_id,
                client,
                policy=desk.policy,
                # Personal data comes back only to the roles the policy lets see it.
                reveal=lambda workflow: may_reveal(desk.policy, reviewer, workflow),
            ),
            _STATUS_DEADLINE_S,
        )
    except InputError as exc:
        raise HTTPException(404, str(exc)) from None
    except TimeoutError:
        raise HTTPException(503, "the run did not answer: no worker is running") from None


async def _client(desk: ReviewDesk) -> Client:
    try:
        return await desk.temporal.get()
    except ServerUnreachableError as exc:
        raise HTTPException(503, str(exc)) from None
