"""Finding a workflow's step (its prompt and output model) and a prompt variant in the catalog."""

from __future__ import annotations

import contextlib
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from tether.contracts import PromptTemplate
from tether.core.errors import InputError
from workflows.catalog import CATALOG
from workflows.steps import LlmStep


def _modules(workflow: str) -> list[ModuleType]:
    entry = CATALOG.get(workflow)
    if entry is None:
        raise InputError(f"unknown workflow {workflow!r}; known: {', '.join(sorted(CATALOG))}")
    module = entry.workflow.__module__
    found = [importlib.import_module(module)]
    with contextlib.suppress(ModuleNotFoundError):
        found.append(importlib.import_module(f"{module}_steps"))
    return found


def find_step(workflow: str, step: str) -> LlmStep[Any]:
    """The step ``step`` of ``workflow``, as its module declares it."""
    steps = {
        value.name: value
        for module in _modules(workflow)
        for value in vars(module).values()
        if isinstance(value, LlmStep)
    }
    if step not in steps:
        raise InputError(
            f"workflow {workflow!r} has no step {step!r}; its steps: {', '.join(sorted(steps))}"
        )
    return steps[step]


def prompt_variant(workflow: str, step: LlmStep[Any], value: str) -> PromptTemplate:
    """The prompt named by ``--variant prompt=VALUE``: a JSON file of a prompt template, or a
    version of the step's prompt declared beside it (a ``PromptTemplate`` with the step's prompt
    id and that version)."""
    path = Path(value)
    if path.suffix == ".json" or path.is_file():
        try:
            return PromptTemplate.model_validate(
                {"id": step.prompt.id} | json.loads(path.read_text(encoding="utf-8"))
            )
        except (OSError, ValueError, ValidationError) as exc:
            raise InputError(f"prompt variant {value}: {exc}") from exc
    for module in _modules(workflow):
        for candidate in vars(module).values():
            if (
                isinstance(candidate, PromptTemplate)
                and candidate.id == step.prompt.id
                and candidate.version == value
            ):
                return candidate
    raise InputError(
        f"no prompt {step.prompt.id!r} version {value!r} beside the step, and no file {value}"
    )
