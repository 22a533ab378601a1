"""What the model is asked: the rendered prompt, the output model its answer must match, and the
re-asks that repair an invalid answer."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from activities.deps import ActivityDeps
from activities.providers.base import REPAIR_PREFIX, ChatMessage, ChatRequest, ChatResponse
from policies.injection import FENCE_INSTRUCTION, fence
from policies.pricing import REPAIR_ECHO_CHARS, REPAIR_ERROR_CHARS
from tether.contracts import LlmStepInput
from tether.core.errors import ConfigurationError
from tether.store.texts import get_text

__all__ = [
    "Answer",
    "ModelCalls",
    "ask_with_repairs",
    "output_schema",
    "parse_output",
    "prompt_variables",
    "render_messages",
    "resolve_output_model",
]


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


async def prompt_variables(deps: ActivityDeps, inp: LlmStepInput) -> dict[str, str]:
    """The step's variables, with the large texts it passed by reference read from the store."""
    variables = dict(inp.variables)
    if inp.text_refs:
        refs = inp.text_refs
        variables |= await deps.in_session(
            lambda session: {name: get_text(session, key) for name, key in refs.items()}
        )
    return variables


_FENCES_INSTRUCTION = FENCE_INSTRUCTION.format(
    begin="a <<<BEGIN NAME_...>>> line", end="the <<<END NAME_...>>> line of the same name"
)


def render_messages(
    inp: LlmStepInput, variables: dict[str, str], fenced: frozenset[str] = frozenset()
) -> list[ChatMessage]:
    """The prompt; variables named in ``fenced`` are wrapped in a fence they cannot close, and
    the system prompt says what a fence holds."""
    system = inp.prompt.system
    if fenced & set(variables):
        variables = {
            name: fence(value, label=name).text if name in fenced else value
            for name, value in variables.items()
        }
        system = f"{system}\n\n{_FENCES_INSTRUCTION}"
    try:
        user = inp.prompt.user.format(**variables)
    except KeyError as exc:
        raise ConfigurationError(
            f"prompt {inp.prompt.id}@{inp.prompt.version} needs variable {exc.args[0]!r}"
        ) from exc
    if inp.feedback:
        user += f"\n\nA reviewer asked for changes to an earlier answer:\n{inp.feedback}"
    return [
        ChatMessage(role="system", content=system),
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


class ModelCalls(Protocol):
    """Where the step's calls go (``CallLog``: the provider, with a ledger row for each)."""

    async def call(self, call: str, model_id: str, request: ChatRequest) -> ChatResponse: ...

    async def mark_invalid(self) -> None:
        """The last call answered, but not with valid output."""


@dataclass(frozen=True)
class Answer:
    """The model's last answer and the request that got it (with every re-ask in its messages)."""

    request: ChatRequest
    response: ChatResponse
    output: dict[str, object] | None
    """The validated output; None when the last answer was still invalid."""
    error: str | None
    repairs: int


async def ask_with_repairs(
    log: ModelCalls,
    model_id: str,
    request: ChatRequest,
    output_model: type[BaseModel],
    max_repairs: int,
) -> Answer:
    """Ask, then re-ask with the validation error up to ``max_repairs`` times until the answer
    validates; every invalid answer is marked so in the call log."""
    response = await log.call("main", model_id, request)
    output, error = parse_output(response.text, output_model)
    repairs = 0
    while output is None and repairs < max_repairs:
        await log.mark_invalid()
        repairs += 1
        request = request.model_copy(
            update={
                "messages": [
                    *request.messages,
                    ChatMessage(role="assistant", content=response.text[:REPAIR_ECHO_CHARS]),
                    ChatMessage(
                        role="user",
                        content=f"{REPAIR_PREFIX}: {(error or '')[:REPAIR_ERROR_CHARS]}. Reply with only JSON that matches the schema.",
                    ),
                ]
            }
        )
        response = await log.call(f"repair-{repairs}", model_id, request)
        output, error = parse_output(response.text, output_model)
    if output is None:
        await log.mark_invalid()
    return Answer(request=request, response=response, output=output, error=error, repairs=repairs)


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    return stripped
