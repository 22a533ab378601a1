"""Evaluation datasets: a JSONL file, or a step's labelled examples from the store.

A JSONL line is one object::

    {"id": "t1", "input": {"subject": "...", "body": "..."},
     "expected": {"category": "billing"},        # optional: exact and field checks
     "human_label": "approve",                   # optional: approve | reject | edit (for kappa)
     "judged_output": {...}}                      # optional: the output that label is about

Every bad line is reported with its line number, and nothing runs until the file is clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.core.errors import InputError
from tether.store.engine import session_scope
from tether.store.examples import examples_for

HumanLabel = Literal["approve", "reject", "edit"]


class EvalCase(BaseModel):
    """One example to run the step on."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    input: dict[str, str]
    """The step's variables (``ref:NAME`` keys name store texts passed by reference)."""
    expected: dict[str, Any] | None = None
    human_label: HumanLabel | None = None
    judged_output: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)

    @property
    def human_says_right(self) -> bool | None:
        """The human's verdict on ``judged_output``: approved unchanged, or not."""
        return None if self.human_label is None else self.human_label == "approve"


def load_jsonl(path: Path) -> list[EvalCase]:
    """Read ``path``; raises InputError naming every bad line (``FILE:LINE: why``)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read dataset {path}: {exc.strerror or exc}") from exc
    cases: list[EvalCase] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            case = EvalCase.model_validate(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            problems.append(f"{path}:{number}: {where}: {first['msg']}")
            continue
        cases.append(case.model_copy(update={"id": case.id or f"line-{number}"}))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(
            f"{len(problems)} bad line(s) in the dataset, nothing was run:\n  {shown}{more}"
        )
    if not cases:
        raise InputError(f"dataset {path} has no examples")
    return cases


def cases_from_reviews(
    database_url: str, workflow: str, step: str, limit: int | None = None
) -> list[EvalCase]:
    """The step's labelled examples: the expected output is what the reviewer let stand (the
    correction of an edit, the approved output), none for a rejection."""
    with session_scope(database_url) as session:
        examples = examples_for(session, workflow, step, limit=limit)
    cases = []
    for example in examples:
        if example.decision not in ("approve", "reject", "edit"):
            continue
        expected = (
            example.corrected_output
            if example.decision == "edit"
            else example.model_output
            if example.decision == "approve"
            else None
        )
        cases.append(
            EvalCase(
                id=example.review_id,
                input={k: str(v) for k, v in example.input.items()},
                expected=expected,
                human_label=example.decision,
                judged_output=example.model_output,
            )
        )
    if not cases:
        raise InputError(f"no labelled examples of {workflow}.{step} in the store yet")
    return cases
