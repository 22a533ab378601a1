"""Pure parts of the LLM step activity: output parsing and what self-consistency compares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from activities.llm_step import categorical_fields, parse_output
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
