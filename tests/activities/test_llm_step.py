"""Pure parts of the LLM step activity: output parsing, the repair re-asks and what
self-consistency compares."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel

from activities.llm_step import (
    categorical_fields,
    concurrently,
    parse_output,
    resolve_output_model,
)
from activities.llm_step.prompting import ask_with_repairs
from activities.providers.base import REPAIR_PREFIX, ChatMessage, ChatRequest, ChatResponse
from policies.values import Usage
from tether.core.errors import ProviderError
from workflows.support_triage_steps import Classification, DraftReply


class Mixed(BaseModel):
    label: Literal["a", "b"]
    note: str
    count: int | None = None
    tags: list[str] = []


def test_self_consistency_compares_decisions_not_free_text() -> None:
    assert categorical_fields(Classification) == ["category", "priority"]
    assert categorical_fields(DraftReply) == ["needs_followup"]
    assert categorical_fields(Mixed) == ["label", "count"]


def test_parse_output_accepts_fenced_json_and_names_the_bad_field() -> None:
    good, error = parse_output('```json\n{"label": "a", "note": "x"}\n```', Mixed)
    assert error is None and good == {"label": "a", "note": "x", "count": None, "tags": []}
    bad, error = parse_output('{"label": "c", "note": "x"}', Mixed)
    assert bad is None and error is not None and error.startswith("label:")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "workflows.support_triage:Classification",
            "workflows.support_triage_steps:Classification",
        ),
        (
            "workflows.document_summary:FinalSummary",
            "workflows.document_summary_steps:FinalSummary",
        ),
    ],
)
def test_output_models_named_by_their_old_module_still_resolve(old: str, new: str) -> None:
    # Steps scheduled before the models moved to the _steps modules carry the old path.
    assert resolve_output_model(old) is resolve_output_model(new)


async def test_a_failing_concurrent_call_is_raised_as_itself_and_cancels_the_others() -> None:
    # Samples and the judge run at once; a provider error must keep its type (and so its retry
    # classification) instead of arriving wrapped in an ExceptionGroup.
    slow_call_finished = False

    async def slow() -> int:
        nonlocal slow_call_finished
        await asyncio.sleep(5)
        slow_call_finished = True
        return 1

    async def rejected() -> int:
        raise ProviderError("401 invalid api key", provider="openai", status_code=401)

    with pytest.raises(ProviderError, match="401 invalid api key"):
        await concurrently(slow(), rejected())
    assert not slow_call_finished


class ScriptedCalls:
    """Answers calls with scripted texts, and remembers what was asked and marked invalid."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls: list[tuple[str, ChatRequest]] = []
        self.invalid = 0

    async def call(self, call: str, model_id: str, request: ChatRequest) -> ChatResponse:
        self.calls.append((call, request))
        return ChatResponse(
            text=self.texts.pop(0), usage=Usage(), model=model_id, provider="scripted"
        )

    async def mark_invalid(self) -> None:
        self.invalid += 1


def mixed_request() -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[ChatMessage(role="user", content="Label this.")],
        json_schema=Mixed.model_json_schema(),
    )


async def test_an_invalid_answer_is_repaired_with_the_validation_error() -> None:
    calls = ScriptedCalls('{"label": "c", "note": "x"}', '{"label": "b", "note": "x"}')

    answer = await ask_with_repairs(calls, "sim/m", mixed_request(), Mixed, max_repairs=2)

    assert answer.output == {"label": "b", "note": "x", "count": None, "tags": []}
    assert answer.error is None and answer.repairs == 1 and calls.invalid == 1
    assert [name for name, _ in calls.calls] == ["main", "repair-1"]
    reask = calls.calls[1][1].messages
    assert [m.role for m in reask] == ["user", "assistant", "user"]
    assert reask[1].content == '{"label": "c", "note": "x"}'
    assert reask[2].content.startswith(f"{REPAIR_PREFIX}: label:")


async def test_repairs_stop_at_the_limit_and_leave_the_answer_invalid() -> None:
    calls = ScriptedCalls("not json", "still not", "nope")

    answer = await ask_with_repairs(calls, "sim/m", mixed_request(), Mixed, max_repairs=2)

    assert answer.output is None and answer.error is not None
    assert answer.repairs == 2 and answer.response.text == "nope"
    assert [name for name, _ in calls.calls] == ["main", "repair-1", "repair-2"]
    assert calls.invalid == 3  # every answer, the last one included, is marked invalid
