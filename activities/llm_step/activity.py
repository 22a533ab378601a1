"""The LLM step activities: one model call, validated, repaired, scored and charged.

This module only orders the work; what the model is asked lives in ``prompting``, what each call
costs and holds in ``call_log``, how sure the step is in ``scoring``.
"""

from __future__ import annotations

import asyncio
import time

from temporalio import activity

from activities.checkpoint import route_for
from activities.deps import ActivityDeps
from activities.failures import to_application_error
from activities.llm_step.cached import served_from_cache
from activities.llm_step.call_log import (
    CallLog,
    charge_cut_off_hold,
    hold_for_attempt,
    release_hold,
    settle_step,
)
from activities.llm_step.prompting import (
    ask_with_repairs,
    output_schema,
    prompt_variables,
    render_messages,
    resolve_output_model,
)
from activities.llm_step.scoring import score_answer
from activities.providers.base import ChatRequest
from activities.step_cache import StepCache
from policies.effective import step_confidence
from policies.routing import route_model
from tether.contracts import CheckedStepInput, CheckedStepResult, LlmStepInput, LlmStepResult
from tether.core.digests import output_digest
from tether.core.errors import TetherError

__all__ = ["HEARTBEAT_EVERY_S", "LlmStepActivities"]

HEARTBEAT_EVERY_S = 2.0


class LlmStepActivities:
    """Activities bound to one worker's dependencies."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps
        self.cache = StepCache(deps)

    @activity.defn(name="tether.checked_llm_step")
    async def checked_llm_step(self, inp: CheckedStepInput) -> CheckedStepResult:
        """The cost checkpoint for one model of the route, then the step on it.

        Each attempt reserves under its own key and releases it when it ends, so a retried
        attempt holds its estimate again while it runs.
        """
        index = inp.step.fallback_index
        try:
            route = route_for(self.deps, inp.checkpoint)
            if index >= len(route):
                return CheckedStepResult(route=route)
            model, attempt = route[index], activity.info().attempt
            checkpoint = await self.deps.in_session(
                lambda session: hold_for_attempt(self.deps, session, inp, model, attempt)
            )
        except TetherError as exc:
            raise to_application_error(exc) from exc
        if checkpoint.reservation_key is None:
            return CheckedStepResult(route=route, checkpoint=checkpoint)
        step_input = inp.step.model_copy(
            update={"model": checkpoint.model, "reservation_key": checkpoint.reservation_key}
        )
        step = await self.llm_step(step_input)
        return CheckedStepResult(route=route, checkpoint=checkpoint, step=step)

    @activity.defn(name="tether.llm_step")
    async def llm_step(self, inp: LlmStepInput) -> LlmStepResult:
        heartbeat = asyncio.create_task(_heartbeat_forever())
        log = CallLog(self.deps, inp, activity.info().attempt)
        try:
            return await self._run(inp, log)
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
        finally:
            heartbeat.cancel()

    async def _run(self, inp: LlmStepInput, log: CallLog) -> LlmStepResult:
        policy = step_confidence(self.deps.policy, inp.workflow, inp.step)
        output_model = resolve_output_model(inp.output_model)
        variables = await prompt_variables(self.deps, inp)
        messages = render_messages(inp, variables)
        input_chars = sum(len(m.content) for m in messages)
        route = (
            [inp.model]
            if inp.model
            else route_model(
                self.deps.policy.routing, inp.tier, input_chars, self.deps.providers.available
            )
        )
        model_id = route[min(inp.fallback_index, len(route) - 1)]
        _, provider_model = self.deps.providers.resolve(model_id)
        started = time.perf_counter()
        cache_key = self.cache.key_for(inp, model_id, messages, variables)
        hit = await self.cache.lookup(cache_key) if cache_key else None
        if hit is not None:
            return await served_from_cache(
                self.deps,
                inp,
                hit,
                model=model_id,
                route_length=len(route),
                attempt=log.attempt,
                started=started,
            )

        request = ChatRequest(
            model=provider_model,
            messages=messages,
            json_schema=output_schema(output_model),
            schema_name=output_model.__name__,
            max_output_tokens=inp.max_output_tokens,
            logprobs=True,
        )
        answer = await ask_with_repairs(log, model_id, request, output_model, policy.max_repairs)
        report = await score_answer(
            self.deps, log, policy, model_id, messages, answer, output_model
        )
        run_spent = await self.deps.in_session(lambda session: settle_step(session, inp))
        response, output = answer.response, answer.output
        digest = output_digest(output, response.text)
        if cache_key is not None and output is not None:
            await self.cache.remember(
                cache_key,
                inp,
                output=output,
                raw_output=response.text[:20_000],
                output_digest=digest,
                confidence=report.model_dump(mode="json"),
                provider=response.provider,
            )
        return LlmStepResult(
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
            run_cost_usd=round(run_spent, 8),
            latency_ms=(time.perf_counter() - started) * 1000,
            repairs=answer.repairs,
            attempts=log.records,
            confidence=report,
        )


async def _heartbeat_forever() -> None:
    # Heartbeats let Temporal notice a dead worker within the heartbeat timeout instead of
    # waiting out the whole start-to-close timeout. None at the start: the server knows the
    # activity just started, and a heartbeat there costs a server write for every step.
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        activity.heartbeat()
