"""Reading the detail page's decision form into a ``DecisionRequest``, or saying what is wrong
with it in the terms the page shows again (status, notice, the open form and its field errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from review_ui.deciding import DecisionRequest, allowed_kinds
from review_ui.rendering import Flash, form_text
from review_ui.schema_form import FormField, build_fields, field_paths, read_form, validate_output
from tether.store.reviews import ReviewItem

__all__ = ["FormState", "edit_prefill", "read_decision_form"]


@dataclass(frozen=True)
class FormState:
    """How the detail page shows its forms: which one is open, what was typed, what is wrong."""

    status_code: int = 200
    notice: Flash | None = None
    fields: list[FormField] | None = None
    open_form: str | None = None
    submitted: dict[str, str] = field(default_factory=dict)
    field_errors: dict[str, str] = field(default_factory=dict)


def read_decision_form(form: FormData, item: ReviewItem) -> DecisionRequest | FormState:
    """The decision the form asks for, or the form to show again with what is wrong."""
    kind = form_text(form, "kind")
    if kind not in allowed_kinds(item):
        return FormState(400, ("error", f"“{kind}” is not a decision this item accepts"))
    edited: dict[str, Any] | None = None
    if kind == "edit":
        edited_or_problem = _read_edit(form, item)
        if isinstance(edited_or_problem, FormState):
            return edited_or_problem
        edited = edited_or_problem
    missing = _missing_text(form, kind)
    if missing is not None:
        return missing
    try:
        return DecisionRequest.model_validate(
            {
                "kind": kind,
                "output_digest": form_text(form, "output_digest"),
                "reason": form_text(form, "reason") or None,
                "edited_output": edited,
                "retry_mode": (form_text(form, "retry_mode") or None) if kind == "retry" else None,
                "feedback": form_text(form, "feedback") or None,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return FormState(400, ("error", f"{where}: {first['msg']}"))


def _read_edit(form: FormData, item: ReviewItem) -> dict[str, Any] | FormState:
    assert item.output_schema is not None
    submitted = {key: form_text(form, key) for key in form}
    edited, errors = read_form(item.output_schema, submitted)
    if not errors:
        edited, errors = validate_output(item.output_model, edited)
    if not errors:
        return edited
    fields = build_fields(item.output_schema, None, submitted=submitted, errors=errors)
    elsewhere = [f"{p or 'output'}: {m}" for p, m in errors.items() if p not in field_paths(fields)]
    notice = "The edited output is not valid yet; see the fields marked below. " + "; ".join(
        elsewhere
    )
    return FormState(422, ("error", notice), fields, "edit", submitted)


def _missing_text(form: FormData, kind: str) -> FormState | None:
    # A rejection needs a reason; a retry with feedback needs the feedback.
    if kind == "reject":
        needed, message, submitted = "reason", "a rejection needs a reason", {"reason": ""}
    elif kind == "retry" and form_text(form, "retry_mode") == "with_feedback":
        needed, message = "feedback", "say what the model should do differently"
        submitted = {"retry_mode": "with_feedback"}
    else:
        return None
    if form_text(form, needed).strip():
        return None
    return FormState(422, open_form=kind, submitted=submitted, field_errors={needed: message})


def edit_prefill(item: ReviewItem) -> dict[str, Any] | None:
    """What the Edit form starts from: the output, or the raw text when it parses as an object."""
    if item.output is not None:
        return item.output
    if item.raw_output:
        try:
            parsed = json.loads(item.raw_output)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None
