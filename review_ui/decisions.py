"""Sending a reviewer's decision to its paused workflow, without ever losing it.

Every decision is first written to the store as a ``DecisionIntent`` (an outbox row keyed by its
update id), then sent as the workflow's ``decide`` update under that same id. Temporal keeps one
update per id, so a double-submitted form, a retry after a timeout and the redelivery loop all
land as one decision. When no worker is polling, the intent stays pending and
``redeliver_pending`` sends it again until the workflow takes or refuses it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Concatenate, Literal, ParamSpec, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether.client import deliver_decision
from tether.contracts import DecisionReceipt, ReviewDecision
from tether.core.settings import Settings
from tether.store.engine import Session, session_scope
from tether.store.outbox import (
    find_intent,
    postpone_intent,
    recorded_receipt,
    settle_intent,
    take_due_intents,
    write_intent,
)
from tether.store.reviews import DecisionIntent

__all__ = [
    "DELIVERY_TIMEOUT",
    "DecisionOutcome",
    "decision_update_id",
    "intent_exists",
    "keep_decision",
    "redeliver_pending",
    "redelivery_loop",
    "submit_decision",
]

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT = timedelta(seconds=5)
"""How long one attempt waits for the workflow; longer means no worker is taking it now."""

_REUSED_FORM = "this form was already used for another decision; reload the page and decide again"

OutcomeState = Literal["accepted", "refused", "queued"]
P = ParamSpec("P")
T = TypeVar("T")


class DecisionOutcome(BaseModel):
    """What happened to a decision, in words a reviewer can read.

    ``accepted`` is True only when the workflow took the decision. A ``queued`` decision is kept
    in the outbox and will be delivered when a worker runs; it is not refused.
    """

    accepted: bool
    receipt: DecisionReceipt | None = None
    message: str
    state: OutcomeState = "refused"
    update_id: str = ""


def decision_update_id(review_id: str, nonce: str) -> str:
    """The update id for a decision made from one rendering of a form (its nonce).

    The same form submitted twice yields the same id, hence one decision.
    """
    return f"decide:{review_id}:{nonce}"


def intent_exists(database_url: str, update_id: str) -> bool:
    """Whether a decision was already submitted under ``update_id`` (a resubmitted form)."""
    with session_scope(database_url) as session:
        return find_intent(session, update_id) is not None


async def submit_decision(
    client: Client,
    decision: ReviewDecision,
    *,
    run_id: str,
    update_id: str | None = None,
    database_url: str | None = None,
    attempt_wait: timedelta = DELIVERY_TIMEOUT,
) -> DecisionOutcome:
    """Persist ``decision`` in the outbox, send it as the ``decide`` update, record the result.

    Args:
        client: A connected Temporal client (Tether's data converter).
        decision: The decision; reviewer and roles must come from authentication.
        run_id: The run (workflow id) that is waiting.
        update_id: Idempotency key; derive it with ``decision_update_id`` from a form nonce.
            A fresh id is made when omitted.
        database_url: The store holding the outbox; default the one ``Settings.from_env`` names.
        attempt_wait: How long to wait for the workflow before leaving the decision queued.

    Returns:
        accepted with the receipt; refused with the workflow's reason; or queued (kept, to be
        delivered when a worker runs).
    """
    url = database_url or Settings.from_env().resolved_database_url
    update_id = update_id or f"decide:{decision.review_id}:{uuid.uuid4().hex}"
    intent = await _in_store(
        url, write_intent, update_id, decision, run_id, first_attempt_for=attempt_wait
    )
    if intent.decision != decision.model_dump(mode="json"):
        return _refused(update_id, _REUSED_FORM)
    if intent.status != "pending":
        return _stored_outcome(intent)
    return await _deliver(client, url, intent, attempt_wait)


async def keep_decision(
    decision: ReviewDecision,
    *,
    run_id: str,
    update_id: str,
    database_url: str,
    why: str,
) -> DecisionOutcome:
    """Only write the decision to the outbox (Temporal is unreachable); the loop delivers it."""
    intent = await _in_store(
        database_url, write_intent, update_id, decision, run_id, first_attempt_for=timedelta(0)
    )
    if intent.decision != decision.model_dump(mode="json"):
        return _refused(update_id, _REUSED_FORM)
    if intent.status != "pending":
        return _stored_outcome(intent)
    return await _keep(database_url, intent, why)


async def redeliver_pending(
    client: Client,
    *,
    database_url: str,
    attempt_wait: timedelta = DELIVERY_TIMEOUT,
    limit: int = 20,
) -> int:
    """Send every pending intent whose retry time has come. Returns how many were settled."""
    due = await _in_store(database_url, take_due_intents, limit, attempt_wait)
    # Together, so a pass over many undeliverable intents takes one wait, not one each.
    outcomes = await asyncio.gather(
        *(_deliver(client, database_url, intent, attempt_wait) for intent in due)
    )
    return sum(1 for outcome in outcomes if outcome.state != "queued")


async def redelivery_loop(
    connect: Callable[[], Awaitable[Client]],
    *,
    database_url: str,
    interval: timedelta = timedelta(seconds=1),
    attempt_wait: timedelta = DELIVERY_TIMEOUT,
) -> None:
    """Run ``redeliver_pending`` forever (the app's lifespan task); cancel it to stop.

    ``connect`` is called on every pass, so the loop keeps going while Temporal is down.
    """
    while True:
        try:
            client = await connect()
            await redeliver_pending(client, database_url=database_url, attempt_wait=attempt_wait)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store or server hiccup must not end the loop
            log.warning("decision redelivery pass failed, retrying: %s", exc)
        await asyncio.sleep(interval.total_seconds())


# --- delivery ------------------------------------------------------------------------------------


async def _deliver(
    client: Client, url: str, intent: DecisionIntent, attempt_wait: timedelta
) -> DecisionOutcome:
    decision = ReviewDecision.model_validate(intent.decision)
    try:
        receipt = await asyncio.wait_for(
            deliver_decision(
                client,
                intent.run_id,
                decision,
                update_id=intent.update_id,
                rpc_timeout=attempt_wait,
            ),
            # The RPC deadline covers each call; this bounds the whole exchange.
            timeout=attempt_wait.total_seconds() + 1,
        )
    except WorkflowUpdateFailedError as exc:
        return await _settle_refused(url, intent, _refusal_text(exc))
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        return await _keep(url, intent, "no worker took the decision in time")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return await _not_found(url, intent, decision, exc)
        if exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            message = f"the run did not take the decision: {exc.message}"
            return await _settle_refused(url, intent, message)
        return await _keep(url, intent, f"Temporal answered {exc.status.name}: {exc.message}")
    except RuntimeError as exc:  # the client's transport when the server is unreachable
        return await _keep(url, intent, f"Temporal unreachable: {exc}")
    return await _settle_accepted(url, intent, receipt)


async def _not_found(
    url: str, intent: DecisionIntent, decision: ReviewDecision, exc: RPCError
) -> DecisionOutcome:
    # The run may have finished after taking this very decision (e.g. a redelivery after the
    # reply was lost); the review row then already names this reviewer and decision.
    taken = await _in_store(url, recorded_receipt, decision)
    if taken is not None:
        return await _settle_accepted(url, intent, taken)
    lowered = exc.message.lower()
    if "completed" in lowered or "closed" in lowered or "finished" in lowered:
        message = f"run {intent.run_id} has already finished; the decision was not needed"
    else:
        message = f"no run {intent.run_id} is known to Temporal"
    return await _settle_refused(url, intent, message)


async def _settle_accepted(
    url: str, intent: DecisionIntent, receipt: DecisionReceipt
) -> DecisionOutcome:
    receipt_json = receipt.model_dump(mode="json")
    await _in_store(url, settle_intent, intent.update_id, "delivered", None, receipt_json)
    return _accepted(intent.update_id, receipt)


async def _settle_refused(url: str, intent: DecisionIntent, message: str) -> DecisionOutcome:
    await _in_store(url, settle_intent, intent.update_id, "refused", message, None)
    return _refused(intent.update_id, message)


async def _keep(url: str, intent: DecisionIntent, why: str) -> DecisionOutcome:
    await _in_store(url, postpone_intent, intent.update_id, why)
    log.warning("decision %s queued for redelivery: %s", intent.update_id, why)
    return DecisionOutcome(
        accepted=False,
        message=(
            "your decision is saved and will reach the run as soon as a worker is running; "
            "this page shows the outcome once it does"
        ),
        state="queued",
        update_id=intent.update_id,
    )


def _accepted(update_id: str, receipt: DecisionReceipt) -> DecisionOutcome:
    return DecisionOutcome(
        accepted=True,
        receipt=receipt,
        message=f"{receipt.kind} by {receipt.reviewer} recorded",
        state="accepted",
        update_id=update_id,
    )


def _refused(update_id: str, message: str) -> DecisionOutcome:
    return DecisionOutcome(accepted=False, message=message, state="refused", update_id=update_id)


def _refusal_text(exc: WorkflowUpdateFailedError) -> str:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.message:
        return cause.message
    return str(cause) or "the run refused the decision"


def _stored_outcome(intent: DecisionIntent) -> DecisionOutcome:
    if intent.status == "delivered" and intent.receipt is not None:
        return _accepted(intent.update_id, DecisionReceipt.model_validate(intent.receipt))
    return _refused(intent.update_id, intent.last_error or "the run refused the decision")


# --- the outbox ---------------------------------------------------------------------------------


async def _in_store(
    url: str, operation: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run one store operation in its own transaction, off the event loop."""

    def run() -> T:
        with session_scope(url) as session:
            return operation(session, *args, **kwargs)

    return await asyncio.to_thread(run)
