"""A run's input as a caller gives it: JSON text or a file, checked for size and depth and
against the workflow's input model before anything starts (CLI, API and UI alike)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.core.errors import InputError

MAX_INPUT_BYTES = 1_500_000
"""Largest run input Tether starts: Temporal refuses a payload over 2 MiB (its default blob
limit), and a run's first activity carries its document again."""
MAX_INPUT_DEPTH = 64
"""Deepest nesting of arrays and objects a run input may have."""


def parse_run_input(workflow: str, raw: str) -> BaseModel:
    """Validate a workflow name and its JSON input (or ``@path``); raise InputError in one line.

    Refused in one line, before anything starts: an unreadable or non-UTF-8 file, invalid JSON,
    nesting deeper than ``MAX_INPUT_DEPTH``, an input over ``MAX_INPUT_BYTES`` once encoded, and
    whatever the workflow's input model rejects.
    """
    from workflows.catalog import CATALOG

    entry = CATALOG.get(workflow)
    if entry is None:
        raise InputError(f"unknown workflow {workflow!r}; known: {', '.join(sorted(CATALOG))}")
    text = _read_input_file(Path(raw[1:])) if raw.startswith("@") else raw
    if len(text) > MAX_INPUT_BYTES:  # characters, each at least one byte
        raise InputError(_too_large(len(text.encode())))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError:
        raise InputError(_too_deep()) from None
    if _depth(data) > MAX_INPUT_DEPTH:
        raise InputError(_too_deep())
    try:
        payload = entry.input_model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise InputError(f"{workflow} input is invalid: {where}: {first['msg']}") from exc
    size = len(payload.model_dump_json().encode())
    if size > MAX_INPUT_BYTES:
        raise InputError(_too_large(size))
    return payload


def _read_input_file(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > 4 * MAX_INPUT_BYTES:  # surely too large once decoded: not read at all
            raise InputError(_too_large(size))
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read input file {path}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"input file {path} is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None


def check_depth(value: Any) -> Any:
    """``value`` unchanged, or ValueError when it nests deeper than ``MAX_INPUT_DEPTH`` (a
    validator for request fields holding free JSON, run before anything re-encodes them)."""
    if _depth(value) > MAX_INPUT_DEPTH:
        raise ValueError(_too_deep())
    return value


def _depth(value: object) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children: list[object] = []
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_INPUT_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_large(size: int) -> str:
    return (
        f"input is {size} bytes, over the {MAX_INPUT_BYTES}-byte limit of a run's input "
        "(Temporal refuses larger payloads); send a shorter document"
    )


def _too_deep() -> str:
    return f"input nests arrays and objects more than {MAX_INPUT_DEPTH} levels deep"
