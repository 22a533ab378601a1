"""The LLM step activities: one model call, validated, repaired, scored and charged.

This module only orders the work; what the model is asked lives in ``prompting``, what each call
costs and holds in ``call_log``, how sure the step is in ``scoring``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from temporalio import activity

from activities.deps import ActivityDeps
from activities.failures import to_application_error
from activities.llm_step.audit_sample import sample_for_audit
from activities.llm_step.cached import reuse_checked, served_from_cache
from activities.llm_step.call_log import (
    CallLog,
    charge_cut_off_hold,
    release_hold,
    settle_step,
)
from activities.llm_step.heartbeat import heartbeating
from activities.llm_step.injection_guard import InjectionScreening, screen_inputs
from activities.llm_step.pii_guard import StepPii
from activities.llm_step.prompting import (
    ask_with_repairs,
    output_schema,
    prompt_variables,
    render_messages,
    resolve_output_model,
)
from activities.llm_step.rate_limits import hold_within_limits, settle_limits
from activities.llm_step.scoring import judge_answer, score_answer
from activities.providers.base import ChatRequest
from activities.step_cache import StepCache, input_text
from activities.step_routing import route_request, step_route
from policies.effective import injection_settings, step_confidence
from policies.models import StepConfidencePolicy
from policies.route_rules import LearnedRule, uses_learned
from policies.values import ConfidenceReport
from tether.contracts import (
    CheckedStepInput,
    CheckedStepResult,
    CheckpointResult,
    GuardEvent,
    LlmStepInput,
    LlmStepResult,
    RateLimited,
)
from tether.core.digests import output_digest
from tether.core.errors import ProviderCircuitOpenError, TetherError
from tether.store.audit_records import record_guard, record_injection_verdict

__all__ = ["LlmStepActivities"]

_log = logging.getLogger(__name__)

LEARNED_RULE_TIMEOUT_S = 2.0
"""At most this long asking the learned routing rule (it embeds the input); then no signal."""


class LlmStepActivities:
    """Activities bound to one worker's dependencies."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps
        self.cache = StepCache(deps)

    @activity.defn(name="tether.checked_llm_step")
    async def checked_llm_step(self, inp: CheckedStepInput) -> CheckedStepResult:
        """The cost checkpoint for one model of the route, then the step on it.

        The route comes from the routing rules on the step's input; a model whose circuit
        breaker is open on this worker fails the activity at once with a non-retryable
        ``ProviderCircuitOpen``, which the workflow takes as "next model". Each attempt reserves
        under its own key and releases it when it ends, so a retried attempt holds its estimate
        again while it runs.
        """
        async with heartbeating():  # from the start: the work before the model call may wait
            return await self._checked_step(inp)

    async def _checked_step(self, inp: CheckedStepInput) -> CheckedStepResult:
        index, attempt = inp.step.fallback_index, activity.info().attempt
        guard_key = f"{inp.step.idempotency_key}/a{attempt}"
        log = CallLog(self.deps, inp.step, attempt)
        try:
            variables = await prompt_variables(self.deps, inp.step)
            choice = step_route(
                self.deps,
                tier=inp.checkpoint.tier,
                model=inp.checkpoint.model,
                input_chars=inp.checkpoint.input_chars,
                request=route_request(inp.step, variables),
                learned=await self._learned_rule(inp, variables, log),
            )
            route = choice.models
            if index >= len(route):
                return CheckedStepResult(route=route)
            model = route[index]
            if not _simulated(model) and self.deps.health.should_skip(model):
                await self._record_guard(inp.step, guard_key, _skipped(model))
                raise ProviderCircuitOpenError(
                    f"{model} skipped: its circuit breaker is open",
                    provider=model.split("/", 1)[0],
                    model=model,
                )
            routed = choice.event(model)

            def hold(session: Session) -> tuple[CheckpointResult | None, RateLimited | None]:
                # The limit counters first, the audit head last, as every other transaction
                # takes them: the other order deadlocks racing steps on PostgreSQL.
                held = hold_within_limits(self.deps, session, inp, model, attempt)
                record_guard(session, **_guard_scope(inp.step, guard_key), event=routed)
                return held

            checkpoint, limited = await self._hold(inp, hold)
        except TetherError as exc:
            raise to_application_error(exc) from exc
        if checkpoint is None or checkpoint.reservation_key is None:
            return CheckedStepResult(route=route, checkpoint=checkpoint, limited=limited)
        step_input = inp.step.model_copy(
            update={"model": checkpoint.model, "reservation_key": checkpoint.reservation_key}
        )
        step = await self._llm_step(step_input, variables, log)
        step.guards.insert(0, routed)
        try:  # the step is answered: a failed settle keeps the estimate, never re-asks the model
            await self.deps.in_session(lambda session: settle_limits(session, inp, attempt, step))
        except Exception:
            _log.warning("rate-limit counts of %s not settled", inp.step.step, exc_info=True)
        return CheckedStepResult(route=route, checkpoint=checkpoint, step=step)

    async def _hold(
        self,
        inp: CheckedStepInput,
        hold: Callable[[Session], tuple[CheckpointResult | None, RateLimited | None]],
    ) -> tuple[CheckpointResult | None, RateLimited | None]:
        """Write the step's hold. Cancelled meanwhile (the run, the worker's shutdown): the
        transaction still commits in its thread, and nothing was sent, so the hold it wrote is
        given back before the cancellation goes on."""
        writing = asyncio.ensure_future(self.deps.in_session(hold))
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            try:
                checkpoint, _ = await writing
            except Exception:  # the hold was not written: nothing to give back
                raise asyncio.CancelledError from None
            if checkpoint is not None and checkpoint.reservation_key is not None:
                held = inp.step.model_copy(update={"reservation_key": checkpoint.reservation_key})
                await release_hold(self.deps, held)
            raise

    @activity.defn(name="tether.llm_step")
    async def llm_step(self, inp: LlmStepInput) -> LlmStepResult:
        async with heartbeating():
            log = CallLog(self.deps, inp, activity.info().attempt)
            return await self._llm_step(inp, None, log)

    async def _llm_step(
        self, inp: LlmStepInput, variables: dict[str, str] | None, log: CallLog
    ) -> LlmStepResult:
        try:
            return await self._run(inp, log, variables)
        except BaseException as exc:
            # A step that ends without a result gives up its hold; _run settles on success. A
            # failure no provider billed (refused before sending, a 4xx) is released; a call
            # that failed after its request was sent (a read timeout, a 5xx, a sample cancelled
            # in flight) and anything else (a cancellation, a crash) may be billed: charged.
            if isinstance(exc, TetherError):
                if log.maybe_billed:
                    await asyncio.shield(charge_cut_off_hold(self.deps, inp))
                else:
                    await release_hold(self.deps, inp)
                raise to_application_error(exc, model=inp.model) from exc
            await asyncio.shield(charge_cut_off_hold(self.deps, inp))
            raise

    async def _learned_rule(
        self, inp: CheckedStepInput, variables: dict[str, str], log: CallLog
    ) -> LearnedRule | None:
        """What reviewers said of this step's nearest past inputs, asked only for an ``auto``
        step whose routing rules have a ``learned`` condition (it embeds the input)."""
        rules = self.deps.policy.route_rules
        if inp.checkpoint.tier != "auto" or inp.checkpoint.model or not uses_learned(rules):
            return None
        if not self.deps.policy.cache.enabled:  # the verdicts live in the cache's entries
            return None
        step = inp.step
        try:  # a slow embedder (the local model on a busy worker) never holds the step up
            return await asyncio.wait_for(
                self.cache.learned_rule(
                    step.tenant, step.workflow, step.step, input_text(variables), log
                ),
                timeout=LEARNED_RULE_TIMEOUT_S,
            )
        except TimeoutError:
            _log.warning("learned routing rule of %s timed out: no signal", step.step)
            return None

    async def _record_guard(self, inp: LlmStepInput, key: str, event: GuardEvent) -> None:
        await self.deps.in_session(
            lambda session: record_guard(session, **_guard_scope(inp, key), event=event)
        )

    async def _run(
        self, inp: LlmStepInput, log: CallLog, variables: dict[str, str] | None
    ) -> LlmStepResult:
        policy = step_confidence(self.deps.policy, inp.workflow, inp.step)
        output_model = resolve_output_model(inp.output_model)
        if variables is None:
            variables = await prompt_variables(self.deps, inp)
        # Before any model call: untrusted inputs scored; a hostile one may stop the step here.
        guard = injection_settings(self.deps.policy, inp.workflow)
        screening = screen_inputs(guard, inp, variables)
        guards = [screening.event] if screening.event is not None else []
        if screening.audited and screening.event is not None:
            event = screening.event
            await self.deps.in_session(
                lambda session: record_injection_verdict(session, inp, event)
            )
        if screening.quarantine is not None:
            await release_hold(self.deps, inp)
            return _quarantined(inp, policy, screening, log)
        fenced = screening.untrusted if guard.fence_untrusted else frozenset[str]()
        messages = render_messages(inp, variables, fenced)
        pii = StepPii(self.deps, inp)
        messages, pii_in = await pii.redact_messages(messages)
        input_chars = sum(len(m.content) for m in messages)
        route = step_route(
            self.deps,
            tier=inp.tier,
            model=inp.model,
            input_chars=input_chars,
            request=route_request(inp, variables),
        ).models
        model_id = route[min(inp.fallback_index, len(route) - 1)]
        _, provider_model = self.deps.providers.resolve(model_id)
        started = time.perf_counter()
        guards += [event for event in (pii_in,) if event is not None]
        cache_key = self.cache.key_for(inp, model_id, messages, variables)
        hit = await self.cache.lookup(cache_key, log) if cache_key else None
        if hit is not None and policy.judge and self.cache.needs_check(hit, inp.run_id):
            # Nobody has vouched for this answer: the judge grades it for this input first.
            try:
                score = await judge_answer(
                    self.deps, log, messages, hit.entry.output, "cache-check"
                )
            except TetherError as exc:  # the judge unreachable: not checked, not served
                _log.warning("cache check of %s failed: %s", inp.step, exc)
                score = None
            vouched = await self.cache.vouch(hit, score)
            guards.append(reuse_checked(score, self.cache.policy.verify_min_score, vouched))
            if not vouched:
                hit = None  # not vouched for: the model answers this input
        if hit is not None:
            served = await served_from_cache(
                self.deps,
                inp,
                hit,
                log,
                model=model_id,
                route_length=len(route),
                started=started,
                guards=guards,
            )
            # A cached answer is reused by many runs: audited (once) like a fresh one, and a
            # reviewer's reject or edit stops it spreading. One a reviewer approved is not.
            if not hit.entry.approved:
                await self._audit_sample(inp, served, cache_entry=hit.entry.id)
            return served

        request = ChatRequest(
            model=provider_model,
            messages=messages,
            json_schema=output_schema(output_model),
            schema_name=output_model.__name__,
            max_output_tokens=inp.max_output_tokens,
            logprobs=True,
        )
        answer = await ask_with_repairs(log, model_id, request, output_model, policy.max_repairs)
        answer, pii_out = await pii.redact_answer(answer)
        report = await score_answer(
            self.deps, log, policy, model_id, messages, answer, output_model
        )
        response, output = answer.response, answer.output
        digest = output_digest(output, response.text)
        # A blocked answer is never kept: no reviewer will see it to release it.
        if cache_key is not None and output is not None and report.outcome != "block":
            await self.cache.remember(  # never raises: the answer stands, only reuse is lost
                cache_key,
                inp,
                output=output,
                raw_output=response.text[:20_000],
                output_digest=digest,
                confidence=report.model_dump(mode="json"),
                provider=response.provider,
                held=report.outcome != "accept",
                calls=log,
            )
        result = LlmStepResult(
            step=inp.step,
            status="valid" if output is not None else "invalid_output",
            output=output,
            raw_output=response.text[:20_000],
            validation_error=answer.error,
            output_digest=digest,
            model=model_id,
            provider=response.provider,
            simulated=response.simulated,
            route_length=len(route),
            usage=log.usage,
            cost_usd=log.cost_usd,
            run_cost_usd=0.0,
            latency_ms=(time.perf_counter() - started) * 1000,
            repairs=answer.repairs,
            attempts=log.records,
            confidence=report,
            guards=[*guards, *(event for event in (pii_out,) if event is not None)],
        )
        run_spent = await self.deps.in_session(lambda session: settle_step(session, inp, result))
        result = result.model_copy(update={"run_cost_usd": round(run_spent, 8)})
        await self._audit_sample(inp, result)
        return result

    async def _audit_sample(
        self, inp: LlmStepInput, result: LlmStepResult, *, cache_entry: int | None = None
    ) -> None:
        try:  # calibration; the run never waits, and the answer it paid for is never lost
            await sample_for_audit(self.deps, inp, result, cache_entry=cache_entry)
        except Exception:
            _log.warning("audit sample of %s not taken", inp.step, exc_info=True)


def _quarantined(
    inp: LlmStepInput, policy: StepConfidencePolicy, screening: InjectionScreening, log: CallLog
) -> LlmStepResult:
    """The result of a step the injection guard held back: no model was called (the cost of
    an embedding its routing asked for is on it)."""
    assert screening.quarantine is not None
    verdict = screening.quarantine.model_dump(mode="json")
    return LlmStepResult(
        step=inp.step,
        status="quarantined",
        output=None,
        raw_output="",
        output_digest=output_digest(verdict),
        model=inp.model or "",
        provider="",
        simulated=False,
        route_length=1,
        usage=log.usage,
        cost_usd=log.cost_usd,
        run_cost_usd=0.0,
        latency_ms=0.0,
        repairs=0,
        attempts=log.records,
        confidence=ConfidenceReport(
            score=0.0,
            components=[],
            outcome="review",
            thresholds=policy.thresholds,
            reasons=[f"prompt injection suspected (score {screening.quarantine.score:.2f})"],
        ),
        guards=[screening.event] if screening.event is not None else [],
        quarantine=screening.quarantine,
    )


def _simulated(model: str) -> bool:
    return model.startswith("simulated/")  # no provider behind it: no breaker


def _skipped(model: str) -> GuardEvent:
    return GuardEvent(guard="breaker", outcome="skipped", detail=model)


def _guard_scope(inp: LlmStepInput, key: str) -> dict[str, Any]:
    return {"key": key, "run_id": inp.run_id, "step": inp.step, "tenant": inp.tenant}
