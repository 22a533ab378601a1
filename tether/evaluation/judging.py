"""The LLM-as-judge: a rubric from the policy, a verdict the judge model must give as JSON."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from tether.contracts import PromptTemplate


class EvalVerdict(BaseModel):
    """What the judge answers about one output."""

    verdict: Literal["pass", "fail"]
    score: float = Field(ge=0, le=1, description="How well the output meets the rubric, 0 to 1.")
    reason: str = Field(max_length=500)


JUDGE_OUTPUT_MODEL = f"{EvalVerdict.__module__}:{EvalVerdict.__qualname__}"


def judge_prompt(rubric: str) -> PromptTemplate:
    """The judge's prompt; the rubric is fixed text, the rest is filled per output."""
    return PromptTemplate(
        id="tether.eval.judge",
        version="1",
        system=(
            "You grade the output of one step of an LLM workflow against a rubric. Answer "
            "with JSON only: verdict pass or fail, a score from 0 to 1, a one-line reason.\n"
            f"Rubric: {rubric}"
        ),
        user=(
            "Step input:\n{input}\n\nOutput to grade:\n{output}\n\n"
            "Reference answer a reviewer accepted (may be empty):\n{reference}"
        ),
    )


def judge_variables(
    step_input: dict[str, str], output: dict[str, Any] | None, reference: dict[str, Any] | None
) -> dict[str, str]:
    return {
        "input": json.dumps(step_input, ensure_ascii=False, sort_keys=True),
        "output": json.dumps(output, ensure_ascii=False, sort_keys=True),
        "reference": json.dumps(reference, ensure_ascii=False, sort_keys=True) if reference else "",
    }
