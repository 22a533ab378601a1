"""The edit form generated from an output schema, and reading a submitted form back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from review_ui.schema_form import FormField, build_fields, read_form, validate_output


class Address(BaseModel):
    city: str = Field(max_length=80)
    zip_code: str | None = Field(default=None, max_length=10)


class Order(BaseModel):
    summary: str = Field(max_length=2000, description="What the customer wants.")
    status: Literal["open", "closed"]
    urgent: bool
    items: int
    score: float | None = None
    tags: list[str] = Field(default_factory=list)
    ship_to: Address
    bill_to: Address | None = None
    extra: list[dict[str, int]] = Field(default_factory=list)


MODEL_PATH = f"{__name__}:Order"
SCHEMA = Order.model_json_schema()
OUTPUT = {
    "summary": "Two chairs",
    "status": "open",
    "urgent": True,
    "items": 2,
    "score": None,
    "tags": ["furniture", "gift"],
    "ship_to": {"city": "Lyon", "zip_code": "69001"},
    "bill_to": None,
    "extra": [{"a": 1}],
}


def by_path(fields: list[FormField], path: str) -> FormField:
    def find(controls: list[FormField]) -> FormField | None:
        for control in controls:
            if control.path == path:
                return control
            found = find(control.children)
            if found is not None:
                return found
        return None

    found = find(fields)
    assert found is not None, f"no control for {path}"
    return found


def test_each_schema_type_gets_the_control_a_reviewer_expects() -> None:
    fields = build_fields(SCHEMA, OUTPUT)
    kinds = {
        path: by_path(fields, path).widget
        for path in (
            "summary",
            "status",
            "urgent",
            "items",
            "score",
            "tags",
            "ship_to",
            "ship_to.city",
            "bill_to",
            "extra",
        )
    }
    assert kinds == {
        "summary": "textarea",
        "status": "select",
        "urgent": "checkbox",
        "items": "number",
        "score": "number",
        "tags": "lines",
        "ship_to": "fieldset",
        "ship_to.city": "text",
        "bill_to": "fieldset",
        "extra": "json",
    }
    assert by_path(fields, "status").options == ["open", "closed"]
    assert by_path(fields, "tags").value == "furniture\ngift"
    assert by_path(fields, "urgent").checked is True
    assert by_path(fields, "items").step == "1" and by_path(fields, "score").step == "any"
    assert by_path(fields, "score").nullable and not by_path(fields, "score").required
    assert by_path(fields, "bill_to").checked is True  # null: "leave empty" is ticked
    assert by_path(fields, "summary").description == "What the customer wants."


def test_a_submitted_form_reads_back_into_the_same_json() -> None:
    form = {
        "f.summary": "Two chairs",
        "f.status": "open",
        "f.urgent": "on",
        "f.items": "2",
        "f.score": "",
        "f.tags": "furniture\n gift \n\n",
        "f.ship_to.city": "Lyon",
        "f.ship_to.zip_code": "69001",
        "f.bill_to.__none": "on",
        "f.extra": '[{"a": 1}]',
    }
    data, errors = read_form(SCHEMA, form)
    assert errors == {}
    assert data == OUTPUT
    assert validate_output(MODEL_PATH, data) == (
        Order.model_validate(OUTPUT).model_dump(mode="json"),
        {},
    )


def test_bad_values_are_reported_on_their_field() -> None:
    form = {
        "f.summary": "x",
        "f.status": "shipped",
        "f.items": "two",
        "f.ship_to.city": "L" * 81,
        "f.extra": "[oops",
    }
    data, errors = read_form(SCHEMA, form)
    assert errors == {
        "items": "enter a whole number",
        "extra": "not valid JSON: Expecting value (line 1)",
    }
    data |= {"items": 2, "extra": []}
    _, model_errors = validate_output(MODEL_PATH, data)
    assert set(model_errors) == {"status", "ship_to.city"}
    assert model_errors["status"] == "Input should be 'open' or 'closed'"

    refilled = build_fields(SCHEMA, None, submitted=form, errors=model_errors)
    assert by_path(refilled, "ship_to.city").value == "L" * 81
    assert by_path(refilled, "ship_to.city").error == "String should have at most 80 characters"
    assert by_path(refilled, "urgent").checked is False


def test_an_edit_is_checked_against_the_recorded_step_model() -> None:
    # The path a review item stores for support_triage's classify step (recorded in histories).
    path = "workflows.support_triage:Classification"
    good = {"category": "billing", "priority": "high", "rationale": "double charge"}
    assert validate_output(path, good) == (good, {})

    bad = {"category": "refunds", "priority": "high", "rationale": "x" * 301}
    data, errors = validate_output(path, bad)
    assert data == bad
    assert set(errors) == {"category", "rationale"}
    assert errors["rationale"] == "String should have at most 300 characters"


def test_a_workflow_model_is_loaded_to_check_an_edit_but_no_other_module_is() -> None:
    # In a fresh interpreter (as the UI process starts), nothing of workflows/ is loaded yet: the
    # step's model is imported to validate the edit, while a module named by a store row that
    # is not a workflow module is never imported on its say-so (nor is a non-model used).
    script = """
import json, sys
from review_ui.schema_form import validate_output
assert "workflows.support_triage" not in sys.modules
bad = {"category": "refunds", "priority": "high", "rationale": "ok"}
checked = validate_output("workflows.support_triage:Classification", bad)
skipped = validate_output("wave:Wave_read", bad)
not_a_model = validate_output("os.path:join", bad)
print(json.dumps([checked[1], skipped, "wave" in sys.modules, not_a_model]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    errors, skipped, wave_loaded, not_a_model = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(errors) == ["category"]
    assert "'billing'" in errors["category"]
    bad = {"category": "refunds", "priority": "high", "rationale": "ok"}
    assert skipped == [bad, {}] and not wave_loaded
    assert not_a_model == [bad, {}]
