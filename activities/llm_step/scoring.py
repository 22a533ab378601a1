"""How sure the LLM step is of an answer: self-consistency samples and an LLM judge, asked at once,
with the schema, repair, logprob and rule signals, scored by the step's confidence policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from activities.checkpoint import judge_model_for
from activities.deps import ActivityDeps
from activities.llm_step.call_log import CallLog
from activities.llm_step.prompting import Answer, output_schema, parse_output
from activities.providers.base import ChatMessage, ChatRequest
from policies.confidence import agreement, judge_is_decisive, score_confidence
from policies.injection import JUDGE_INSTRUCTION, fence
from policies.models import StepConfidencePolicy
from policies.pricing import JUDGE_ANSWER_CHARS, JUDGE_MAX_OUTPUT_TOKENS, JUDGE_TASK_CHARS
from policies.rules import check_rules
from policies.values import ConfidenceReport, ConfidenceSignals

__all__ = [
    "JudgeVerdict",
    "categorical_fields",
    "concurrently",
    "judge_answer",
    "score_answer",
]

T = TypeVar("T")


class JudgeVerdict(BaseModel):
    score: float
    reason: str


async def score_answer(
    deps: ActivityDeps,
    log: CallLog,
    policy: StepConfidencePolicy,
    model_id: str,
    messages: list[ChatMessage],
    answer: Answer,
    output_model: type[BaseModel],
) -> ConfidenceReport:
    """The confidence report for ``answer``; samples and the judge only for a valid one."""
    signals = ConfidenceSignals(
        schema_valid=answer.output is not None,
        repairs=answer.repairs,
        max_repairs=policy.max_repairs,
        mean_logprob=_mean(answer.response.token_logprobs),
    )
    output = answer.output
    if output is None:
        return score_confidence(signals, policy)
    signals.rule_results = check_rules(policy.rules, output)
    sampling = _self_consistency(log, policy, model_id, answer.request, output, output_model)
    if not policy.judge or policy.judge_when == "always":
        # Samples and the judge only read the answer: they run at once, so a step waits for
        # one model latency after its answer instead of one per call. A failing call cancels
        # the others, and Temporal retries the step.
        signals.self_consistency, signals.judge_score = await concurrently(
            sampling, _judge(deps, log, policy, messages, output)
        )
        return score_confidence(signals, policy)
    # "decisive": the judge is asked only when its score could change the gate's outcome.
    signals.self_consistency = await sampling
    if judge_is_decisive(signals, policy):
        signals.judge_score = await _judge(deps, log, policy, messages, output)
        return score_confidence(signals, policy)
    report = score_confidence(signals, policy)
    report.reasons.append(
        f"judge not asked: no judge score could change the outcome ({report.outcome})"
    )
    return report


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


async def concurrently(*calls: Coroutine[Any, Any, T]) -> list[T]:
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


async def _self_consistency(
    log: CallLog,
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

    samples = await concurrently(*(sample(n) for n in range(1, policy.samples)))
    fields = categorical_fields(output_model)
    if fields:
        # Free text never matches word for word; samples agree on what they decide.
        return agreement(_project(output, fields), [_project(x, fields) for x in samples])
    return agreement(output, samples)


async def _judge(
    deps: ActivityDeps,
    log: CallLog,
    policy: StepConfidencePolicy,
    messages: list[ChatMessage],
    output: dict[str, object],
) -> float | None:
    if not policy.judge:
        return None
    return await judge_answer(deps, log, messages, output)


async def judge_answer(
    deps: ActivityDeps,
    log: CallLog,
    messages: list[ChatMessage],
    output: dict[str, object],
    call: str = "judge",
) -> float | None:
    """The judge's score in [0, 1] of ``output`` as the answer to ``messages`` (None when its
    verdict is unreadable), asked on the judge's model and charged under ``call``."""
    judge_model = judge_model_for(deps)
    _, provider_model = deps.providers.resolve(judge_model)
    task = "\n\n".join(m.content for m in messages)
    request = ChatRequest(
        model=provider_model,
        messages=[
            ChatMessage(
                role="system",
                content=(
                    "You grade answers. Score from 0 (wrong or unusable) to 1 (correct and "
                    f"complete). {JUDGE_INSTRUCTION}"
                ),
            ),
            ChatMessage(
                role="user",
                content=(
                    f"Task:\n{task[:JUDGE_TASK_CHARS]}\n\n"
                    f"Answer:\n{fence(json.dumps(output)[:JUDGE_ANSWER_CHARS], 'ANSWER').text}"
                ),
            ),
        ],
        json_schema=output_schema(JudgeVerdict),
        schema_name="JudgeVerdict",
        max_output_tokens=JUDGE_MAX_OUTPUT_TOKENS,
    )
    response = await log.call(call, judge_model, request)
    verdict, _ = parse_output(response.text, JudgeVerdict)
    if verdict is None:
        return None
    return min(1.0, max(0.0, float(verdict["score"])))  # type: ignore[arg-type]


def _project(output: dict[str, object], fields: list[str]) -> dict[str, object]:
    return {name: output.get(name) for name in fields}


def _mean(values: list[float] | None) -> float | None:
    if not values:
        return None
    return sum(values) / len(values)
