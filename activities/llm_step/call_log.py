"""The LLM step's call log: a ledger row for every provider call, and the step's cost hold.

Every provider call is written to the cost ledger under a key derived from the workflow's
idempotency key and this activity attempt, so a retried activity never counts a call twice and
every attempt that reached a provider is counted. Each attempt holds its cost estimate under a
key of its own and releases it when it ends, whether it settles or fails.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlmodel import Session

from activities.checkpoint import check_cost
from activities.deps import ActivityDeps
from activities.provider_health import ProviderHealth
from activities.providers.base import ChatProvider, ChatRequest, ChatResponse
from activities.providers.http import may_have_been_billed
from activities.run_events import step_settled, step_started
from policies.pricing import cost_usd
from policies.values import Usage
from tether.contracts import (
    EMBEDDING_CALL,
    AttemptRecord,
    CheckedStepInput,
    CheckpointResult,
    LlmStepInput,
    LlmStepResult,
)
from tether.core.errors import ProviderCircuitOpenError, ProviderError, ProviderUnavailableError
from tether.store.ledger import (
    LedgerEntry,
    charge_hold,
    charge_holds_under,
    record_call,
    run_spend,
    set_outcome,
    settle_reservation,
)
from tether.store.step_events import record_step_event

__all__ = [
    "CallLog",
    "charge_cut_off_hold",
    "guarded_call",
    "hold_for_attempt",
    "release_hold",
    "settle_step",
]


class _CallTimedOut(ProviderUnavailableError):
    """The policy's per-call timeout ran out: the request was sent, the answer never came."""


async def guarded_call(
    health: ProviderHealth, model_id: str, provider: ChatProvider, request: ChatRequest
) -> ChatResponse:
    """One call through ``model_id``'s circuit breaker, under the policy's per-call timeout.

    Raises:
        ProviderCircuitOpenError: The breaker is open (or half-open with its probes taken): the
            call is not made.
        ProviderUnavailableError: The call took longer than the per-call timeout.
    """
    permit = health.acquire(model_id)
    if not permit:
        raise ProviderCircuitOpenError(
            f"{model_id} skipped: its circuit breaker is open",
            provider=provider.name,
            model=model_id,
        )
    timeout_s = health.call_timeout_s(model_id)
    with health.observe(model_id, permit):
        try:
            async with asyncio.timeout(timeout_s):
                return await provider.complete(request)
        except TimeoutError as exc:
            raise _CallTimedOut(
                f"{model_id} did not answer within {timeout_s:g}s", provider=provider.name
            ) from exc


@dataclass
class CallLog:
    """Calls made by one activity execution, written to the ledger as they happen."""

    deps: ActivityDeps
    inp: LlmStepInput
    attempt: int
    records: list[AttemptRecord] = field(default_factory=list)
    maybe_billed: bool = False
    """A call failed after its request was sent (or was cancelled in flight): the provider may
    bill it without telling us the usage, so the attempt is charged its hold, as estimated."""
    _embeddings: int = 0

    async def call(self, call: str, model_id: str, request: ChatRequest) -> ChatResponse:
        provider, _ = self.deps.providers.resolve(model_id)
        started = time.perf_counter()
        try:
            if provider.simulated:
                response = await provider.complete(request)
            else:
                response = await guarded_call(self.deps.health, model_id, provider, request)
        except ProviderCircuitOpenError:
            raise  # never sent: nothing to bill or to record as a call
        except ProviderError as exc:
            timed_out = isinstance(exc, _CallTimedOut)  # sent, never answered
            self.maybe_billed = self.maybe_billed or timed_out or may_have_been_billed(exc)
            await self._record(call, model_id, provider, Usage(), started, str(exc))
            raise
        except asyncio.CancelledError:
            # Cancelled in flight (a failing sibling sample, or the attempt itself): a call
            # that got this far may have reached the provider.
            self.maybe_billed = self.maybe_billed or not provider.simulated
            raise
        await self._record(call, model_id, provider, response.usage, started, None)
        return response

    async def mark_invalid(self) -> None:
        """The last model call answered, but not with valid output."""
        last = next(r for r in reversed(self.records) if not r.embedding)
        last.outcome = "invalid_output"
        await self.deps.in_session(lambda session: set_outcome(session, last.key, "invalid_output"))

    @property
    def usage(self) -> Usage:
        """The tokens of the step's model calls (embeddings are in its cost only)."""
        return sum((r.usage for r in self.records if not r.embedding), Usage())

    @property
    def cost_usd(self) -> float:
        return round(sum(r.cost_usd for r in self.records), 8)

    async def embedding_call(
        self, model_id: str, billed_tokens: int, started: float, error: str | None
    ) -> None:
        """A billed embedding call made for this step (the semantic cache, the learned rule)."""
        self._embeddings += 1
        usage = Usage(input_tokens=billed_tokens)
        provider = model_id.split("/", 1)[0]
        call = f"{EMBEDDING_CALL}{self._embeddings}"
        await self._write(call, model_id, provider, False, usage, started, error)

    async def _record(
        self,
        call: str,
        model_id: str,
        provider: ChatProvider,
        usage: Usage,
        started: float,
        error: str | None,
    ) -> None:
        await self._write(call, model_id, provider.name, provider.simulated, usage, started, error)

    async def _write(
        self,
        call: str,
        model_id: str,
        provider: str,
        simulated: bool,
        usage: Usage,
        started: float,
        error: str | None,
    ) -> None:
        record = AttemptRecord(
            key=f"{self.inp.idempotency_key}/a{self.attempt}/{call}",
            call=call,
            activity_attempt=self.attempt,
            model=model_id,
            provider=provider,
            simulated=simulated,
            usage=usage,
            cost_usd=cost_usd(self.deps.policy.prices, model_id, usage),
            latency_ms=(time.perf_counter() - started) * 1000,
            outcome="ok" if error is None else "error",
            error=error[:500] if error else None,
        )
        self.records.append(record)
        # The ledger row is the attempt's record plus the run it was made for.
        row = LedgerEntry(
            **record.model_dump(exclude={"usage"}),
            **usage.model_dump(),
            run_id=self.inp.run_id,
            workflow=self.inp.workflow,
            step=self.inp.step,
            tenant=self.inp.tenant,
            end_user=self.inp.end_user,
        )
        await self.deps.in_session(lambda session: record_call(session, row))


def hold_for_attempt(
    deps: ActivityDeps, session: Session, inp: CheckedStepInput, model: str, attempt: int
) -> CheckpointResult:
    """The cost checkpoint for ``model``, holding its estimate under this attempt's own key."""
    # One step runs one activity at a time: a hold left under its scope is from an attempt
    # whose worker died, maybe mid-call: that call may have reached the provider, so the hold
    # is charged (``estimated`` on the ledger), not released.
    checkpoint = inp.checkpoint
    charge_holds_under(
        session,
        checkpoint.run_id,
        checkpoint.reservation_key,
        workflow=checkpoint.workflow,
        step=checkpoint.step,
    )
    checkpoint = inp.checkpoint.model_copy(
        update={"model": model, "reservation_key": f"{inp.step.idempotency_key}/a{attempt}"}
    )
    result = check_cost(deps, session, checkpoint)
    if result.reservation_key is not None:
        record_step_event(session, step_started(checkpoint, inp.step, result.model))
    return result


async def release_hold(deps: ActivityDeps, inp: LlmStepInput) -> None:
    """Release the step's hold when it ends without a result."""
    if inp.reservation_key:
        key = inp.reservation_key
        await deps.in_session(lambda session: settle_reservation(session, key))


async def charge_cut_off_hold(deps: ActivityDeps, inp: LlmStepInput) -> None:
    """Charge the step's hold at its reserved amount: the attempt was cut off (cancelled, or
    failed unexpectedly) while a call may have been with the provider."""
    if inp.reservation_key:
        key, workflow, step = inp.reservation_key, inp.workflow, inp.step
        await deps.in_session(
            lambda session: charge_hold(session, key, workflow=workflow, step=step)
        )


def settle_step(session: Session, inp: LlmStepInput, result: LlmStepResult) -> float:
    """Release the step's hold, record its step event and return what its run has spent, in
    one transaction."""
    record_step_event(session, step_settled(inp, result))
    if inp.reservation_key:
        settle_reservation(session, inp.reservation_key)
    spent, _ = run_spend(session, inp.run_id)
    return spent
