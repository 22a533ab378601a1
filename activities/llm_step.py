"""The LLM step activity: one model call, validated, repaired, scored and charged.

Every provider call made here is written to the cost ledger under a key derived from the
workflow's idempotency key and this activity attempt, so a retried activity never counts a call
twice and every attempt that reached a provider is counted.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlmodel import Session
from temporalio import activity

from activities.checkpoint import check_cost, route_for
from activities.deps import ActivityDeps
from activities.failures import to_application_error
from activities.providers.base import ChatMessage, ChatRequest, ChatResponse
from policies.confidence import agreement, score_confidence
from policies.effective import step_confidence
from policies.models import StepConfidencePolicy
from policies.pricing import cost_usd
from policies.routing import route_model
from policies.rules import check_rules
from policies.values import ConfidenceSignals, Usage
from tether.contracts import (
    AttemptRecord,
    CheckedStepInput,
    CheckedStepResult,
    CheckpointResult,
    LlmStepInput,
    LlmStepResult,
)
from tether.core.digests import output_digest
from tether.core.errors import ConfigurationError, ProviderError, TetherError
from tether.store.ledger import (
    LedgerEntry,
    record_call,
    release_holds_under,
    run_spend,
    set_outcome,
    settle_reservation,
)
from tether.store.texts import get_text

REPAIR_PREFIX = "Your previous answer was invalid"
HEARTBEAT_EVERY_S = 2.0

T = TypeVar("T")


class JudgeVerdict(BaseModel):
    score: float
    reason: str


@lru_cache(maxsize=256)
def resolve_output_model(path: str) -> type[BaseModel]:
    """Import ``module:Class`` and check it is a pydantic model."""
    module_name, _, class_name = path.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"output model {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        raise ConfigurationError(f"output model {path!r} is not a pydantic model")
    return target


@lru_cache(maxsize=256)
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, built once per model: pydantic rebuilds it on every call."""
    return model.model_json_schema()


def render_messages(inp: LlmStepInput, variables: dict[str, str]) -> list[ChatMessage]:
    try:
        user = inp.prompt.user.format(**variables)
    except KeyError as exc:
        raise ConfigurationError(
            f"prompt {inp.prompt.id}@{inp.prompt.version} needs variable {exc.args[0]!r}"
        ) from exc
    if inp.feedback:
        user += f"\n\nA reviewer asked for changes to an earlier answer:\n{inp.feedback}"
    return [
        ChatMessage(role="system", content=inp.prompt.system),
        ChatMessage(role="user", content=user),
    ]


def parse_output(text: str, model: type[BaseModel]) -> tuple[dict[str, object] | None, str | None]:
    """Return (validated output as JSON-able dict, None) or (None, a short validation error)."""
    try:
        parsed = model.model_validate_json(_strip_fences(text))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        return None, problems
    return parsed.model_dump(mode="json"), None


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    return stripped


@dataclass
class _CallLog:
    """Calls made by one activity execution, written to the ledger as they happen."""

    deps: ActivityDeps
    inp: LlmStepInput
    attempt: int
    records: list[AttemptRecord] = field(default_factory=list)

    async def call(self, call: str, model_id: str, request: ChatRequest) -> ChatResponse:
        provider, _ = self.deps.providers.resolve(model_id)
        started = time.perf_counter()
        try:
            response = await provider.complete(request)
        except ProviderError as exc:
            await self._record(
                call,
                model_id,
                provider.name,
                provider.simulated,
                Usage(),
                started,
                "error",
                str(exc),
            )
            raise
        await self._record(
            call, model_id, provider.name, provider.simulated, response.usage, started, "ok", None
        )
        return response

    async def mark_invalid(self) -> None:
        """The last call answered, but not with valid output."""
        last = self.records[-1]
        last.outcome = "invalid_output"
        await self.deps.in_session(lambda session: set_outcome(session, last.key, "invalid_output"))

    async def _record(
        self,
        call: str,
        model_id: str,
        provider: str,
        simulated: bool,
        usage: Usage,
        started: float,
        outcome: str,
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
            outcome="ok" if outcome == "ok" else "error",
            error=error[:500] if error else None,
        )
        self.records.append(record)
        row = LedgerEntry(
            key=record.key,
            run_id=self.inp.run_id,
            workflow=self.inp.workflow,
            step=self.inp.step,
            tenant=self.inp.tenant,
            end_user=self.inp.end_user,
            call=call,
            activity_attempt=self.attempt,
            model=model_id,
            provider=provider,
            simulated=simulated,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=record.cost_usd,
            latency_ms=record.latency_ms,
            outcome=record.outcome,
            error=record.error,
        )
        await self.deps.in_session(lambda session: record_call(session, row))


class LlmStepActivities:
    """Activities bound to one worker's dependencies."""

    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

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
            attempt = activity.info().attempt
            step_scope = inp.checkpoint.reservation_key
            checkpoint_input = inp.checkpoint.model_copy(
                update={
                    "model": route[index],
                    "reservation_key": f"{inp.step.idempotency_key}/a{attempt}",
                }
            )

            def check(session: Session) -> CheckpointResult:
                # One step runs one activity at a time: a hold left under its scope is from an
                # attempt whose worker died mid-call, and would otherwise count until month end.
                release_holds_under(session, inp.checkpoint.run_id, step_scope)
                return check_cost(self.deps, session, checkpoint_input)

            checkpoint = await self.deps.in_session(check)
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
        try:
            return await self._run(inp)
        except BaseException as exc:
            # A step that ends without a result releases its hold; _run settles on success.
            if inp.reservation_key:
                key = inp.reservation_key
                await self.deps.in_session(lambda session: settle_reservation(session, key))
            if isinstance(exc, TetherError):
                raise to_application_error(exc, model=inp.model) from exc
            raise
        finally:
            heartbeat.cancel()

    async def _run(self, inp: LlmStepInput) -> LlmStepResult:
        policy = step_confidence(self.deps.policy, inp.workflow, inp.step)
        output_model = resolve_output_model(inp.output_model)
        variables = dict(inp.variables)
        if inp.text_refs:
            refs = inp.text_refs
            variables |= await self.deps.in_session(
                lambda session: {name: get_text(session, key) for name, key in refs.items()}
            )
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
        log = _CallLog(self.deps, inp, activity.info().attempt)
        schema = output_schema(output_model)
        started = time.perf_counter()

        request = ChatRequest(
            model=provider_model,
            messages=messages,
            json_schema=schema,
            schema_name=output_model.__name__,
            max_output_tokens=inp.max_output_tokens,
            logprobs=True,
        )
        response = await log.call("main", model_id, request)
        output, error = parse_output(response.text, output_model)
        repairs = 0
        while output is None and repairs < policy.max_repairs:
            await log.mark_invalid()
            repairs += 1
            request = request.model_copy(
                update={
                    "messages": [
                        *request.messages,
                        ChatMessage(role="assistant", content=response.text[:4000]),
                        ChatMessage(
                            role="user",
                            content=f"{REPAIR_PREFIX}: {error}. Reply with only JSON that matches the schema.",
                        ),
                    ]
                }
            )
            response = await log.call(f"repair-{repairs}", model_id, request)
            output, error = parse_output(response.text, output_model)
        if output is None:
            await log.mark_invalid()

        signals = ConfidenceSignals(
            schema_valid=output is not None,
            repairs=repairs,
            max_repairs=policy.max_repairs,
            mean_logprob=_mean(response.token_logprobs),
        )
        if output is not None:
            # Samples and the judge only read the answer: they run at once, so a step waits for
            # one model latency after its answer instead of one per call. A failing call cancels
            # the others, and Temporal retries the step.
            signals.self_consistency, signals.judge_score = await _concurrently(
                self._self_consistency(log, policy, model_id, request, output, output_model),
                self._judge(log, policy, inp, messages, output),
            )
            signals.rule_results = check_rules(policy.rules, output)
        report = score_confidence(signals, policy)

        usage = sum((r.usage for r in log.records), Usage())
        run_spent = await self.deps.in_session(lambda session: _settle(session, inp))
        return LlmStepResult(
            step=inp.step,
            status="valid" if output is not None else "invalid_output",
            output=output,
            raw_output=response.text[:20_000],
            validation_error=error,
            output_digest=output_digest(output, response.text),
            model=model_id,
            provider=response.provider,
            simulated=response.simulated,
            route_length=len(route),
            usage=usage,
            cost_usd=round(sum(r.cost_usd for r in log.records), 8),
            run_cost_usd=round(run_spent, 8),
            latency_ms=(time.perf_counter() - started) * 1000,
            repairs=repairs,
            attempts=log.records,
            confidence=report,
        )

    async def _self_consistency(
        self,
        log: _CallLog,
        policy: StepConfidencePolicy,
        model_id: str,
        request: ChatRequest,
        output: dict[str, object],
        output_model: type[BaseModel],
    ) -> float | None:
        if policy.samples <= 1:
            return None

        async def sample(n: int) -> dict[str, object]:
            sample_request = request.model_copy(
                update={"temperature": 0.7, "seed": n, "logprobs": False}
            )
            response = await log.call(f"sample-{n}", model_id, sample_request)
            parsed, _ = parse_output(response.text, output_model)
            return parsed if parsed is not None else {}

        samples = await _concurrently(*(sample(n) for n in range(1, policy.samples)))
        fields = categorical_fields(output_model)
        if fields:
            # Free text never matches word for word; samples agree on what they decide.
            return agreement(_project(output, fields), [_project(x, fields) for x in samples])
        return agreement(output, samples)

    async def _judge(
        self,
        log: _CallLog,
        policy: StepConfidencePolicy,
        inp: LlmStepInput,
        messages: list[ChatMessage],
        output: dict[str, object],
    ) -> float | None:
        if not policy.judge:
            return None
        judge_model = route_model(
            self.deps.policy.routing, "strong", 0, self.deps.providers.available
        )[0]
        _, provider_model = self.deps.providers.resolve(judge_model)
        task = "\n\n".join(m.content for m in messages)
        request = ChatRequest(
            model=provider_model,
            messages=[
                ChatMessage(
                    role="system",
                    content="You grade answers. Score from 0 (wrong or unusable) to 1 (correct and complete).",
                ),
                ChatMessage(
                    role="user",
                    content=f"Task:\n{task[:8000]}\n\nAnswer:\n{json.dumps(output)[:8000]}",
                ),
            ],
            json_schema=output_schema(JudgeVerdict),
            schema_name="JudgeVerdict",
            max_output_tokens=200,
        )
        response = await log.call("judge", judge_model, request)
        verdict, _ = parse_output(response.text, JudgeVerdict)
        if verdict is None:
            return None
        return min(1.0, max(0.0, float(verdict["score"])))  # type: ignore[arg-type]


@lru_cache(maxsize=256)
def categorical_fields(model: type[BaseModel]) -> list[str]:
    """Top-level fields holding decisions (enums, literals, booleans, numbers), not free text."""
    schema = output_schema(model)
    defs = schema.get("$defs", {})
    found = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        for option in options:
            ref = option.get("$ref", "")
            target = defs.get(ref.rsplit("/", 1)[-1], option) if ref else option
            if (
                "enum" in target
                or "const" in target
                or target.get("type") in ("boolean", "integer", "number")
            ):
                found.append(name)
                break
    return found


def _project(output: dict[str, object], fields: list[str]) -> dict[str, object]:
    return {name: output.get(name) for name in fields}


def _mean(values: list[float] | None) -> float | None:
    if not values:
        return None
    return sum(values) / len(values)


async def _concurrently(*calls: Coroutine[Any, Any, T]) -> list[T]:
    """Await ``calls`` at once; the first failure cancels the rest and is raised as itself (not
    wrapped in an ExceptionGroup), so provider errors keep their retry classification."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failures:
        first: BaseException = failures
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


async def _heartbeat_forever() -> None:
    # Heartbeats let Temporal notice a dead worker within the heartbeat timeout instead of
    # waiting out the whole start-to-close timeout. None at the start: the server knows the
    # activity just started, and a heartbeat there costs a server write for every step.
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        activity.heartbeat()


def _settle(session: Session, inp: LlmStepInput) -> float:
    """Release the step's reservation and return what its run has spent, in one transaction."""
    if inp.reservation_key:
        settle_reservation(session, inp.reservation_key)
    spent, _ = run_spend(session, inp.run_id)
    return spent
