"""What the audit log records besides reviews: each model call and each budget action.

Called in the transaction that writes what they record (the ledger row, the reservation), so
the audit row exists exactly when the thing it vouches for does. No prompt or output text is
recorded: models, tokens, costs, outcomes and digests only.
"""

from __future__ import annotations

from typing import Protocol

from sqlmodel import Session

from policies.values import BudgetCheck
from tether.contracts import CheckpointInput, GuardEvent, LlmStepInput
from tether.store.audit import append_event


class LedgerRow(Protocol):
    """What the audit log takes from a ledger row (``tether.store.ledger.LedgerEntry``)."""

    key: str
    run_id: str
    step: str
    tenant: str
    call: str
    activity_attempt: int
    model: str
    simulated: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float
    outcome: str


def record_model_call(session: Session, entry: LedgerRow) -> None:
    """A provider call written to the ledger (once per ledger key)."""
    append_event(
        session,
        key=f"model_call:{entry.key}",
        kind="model_call",
        actor="tether",
        run_id=entry.run_id,
        detail={
            "step": entry.step,
            "call": entry.call,
            "attempt": entry.activity_attempt,
            "model": entry.model,
            "simulated": entry.simulated,
            "input_tokens": entry.input_tokens,
            "output_tokens": entry.output_tokens,
            "cost_usd": entry.cost_usd,
            "outcome": entry.outcome,
            "tenant": entry.tenant,
        },
    )


def record_budget_action(
    session: Session, inp: CheckpointInput, check: BudgetCheck, model: str
) -> None:
    """A checkpoint that refused a step (and the action the policy takes: downgrade, approve
    spend, stop), or that reserved over budget because a reviewer approved the spend."""
    kind = "budget_spend_approved" if inp.force else "budget_refused"
    append_event(
        session,
        key=f"{kind}:{inp.reservation_key}:{model}",
        kind=kind,
        actor="tether",
        run_id=inp.run_id,
        detail={
            "step": inp.step,
            "model": model,
            "action": check.action,
            "estimate_usd": check.estimate_usd,
            "message": check.message,
            "downgrade_model": check.downgrade_model,
            "extra_run_budget_usd": inp.extra_run_budget_usd,
            "tenant": inp.tenant,
        },
    )


def record_guard(
    session: Session,
    *,
    key: str,
    run_id: str,
    step: str,
    tenant: str,
    event: GuardEvent,
) -> None:
    """What a production guard decided for a step (route, breaker, ...), once per ``key``."""
    append_event(
        session,
        key=f"guard_{event.guard}:{key}",
        kind=f"guard_{event.guard}",
        actor="tether",
        run_id=run_id,
        detail={
            "step": step,
            "tenant": tenant,
            "outcome": event.outcome,
            "detail": event.detail,
            "value": event.value,
        },
    )


def record_injection_verdict(session: Session, inp: LlmStepInput, event: GuardEvent) -> None:
    """A step whose input the injection guard quarantined or flagged (once per step scope).

    The rules that fired and the score only: never the text."""
    append_event(
        session,
        key=f"injection:{inp.idempotency_key}",
        kind=f"injection_{event.outcome}",
        actor="tether",
        run_id=inp.run_id,
        detail={
            "step": inp.step,
            "tenant": inp.tenant,
            "score": event.value,
            "rules": event.detail,
        },
    )
