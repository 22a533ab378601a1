"""The Edit and Reject modals a Slack click opens, and reading an Edit submission back.

The Edit modal is the web edit form (``review_ui.schema_form``) rendered in Block Kit, and a
submission is read back through the same code, so both front-ends accept the same edits.
"""

from __future__ import annotations

import json

from activities.block_kit import JsonObject, clip, escape, mrkdwn, section
from review_ui.schema_form import FIELD_PREFIX, FormField, build_fields, read_form, validate_output
from tether.store.reviews import ReviewItem

__all__ = [
    "EDIT_CALLBACK",
    "REJECT_CALLBACK",
    "REJECT_REASON_BLOCK",
    "edit_modal",
    "parse_edit_submission",
    "reject_modal",
]

EDIT_CALLBACK = "tether_edit"
REJECT_CALLBACK = "tether_reject"
REJECT_REASON_BLOCK = "reason"
_INPUT_ACTION = "value"

_INPUT_MAX = 3000
_OPTION_TEXT_MAX = 75
_OPTION_VALUE_MAX = 150
_SELECT_OPTIONS_MAX = 100
_MODAL_BLOCKS_MAX = 100
_LABEL_MAX = 2000


def edit_modal(item: ReviewItem, digest: str) -> JsonObject:
    """The Edit modal, generated from the item's output schema and prefilled with its output."""
    blocks: list[JsonObject] = [
        {
            "type": "context",
            "elements": [
                mrkdwn(
                    f"*{escape(item.workflow)} · {escape(item.step)}*: your edit is checked "
                    "against the step's output schema, then replaces the model's output."
                )
            ],
        }
    ]
    for control in _controls(item.output_schema, item.output)[: _MODAL_BLOCKS_MAX - 1]:
        if len(control.value) > _INPUT_MAX:
            # Slack would cut the prefilled text, and saving would silently truncate the output.
            label = escape(control.label)
            blocks.append(section(f"*{label}* is too long to edit in Slack and is kept as it "
                                   "is; edit it on the web page instead."))  # fmt: skip
            continue
        blocks.append(_input_block(control))
    return _modal(EDIT_CALLBACK, "Edit output", "Save edit", item.review_id, digest, blocks)


def reject_modal(item: ReviewItem, digest: str) -> JsonObject:
    """The small modal asking why: a rejection needs a reason."""
    where = f"*{escape(item.workflow)} · {escape(item.step)}*"
    blocks: list[JsonObject] = [
        section(f"Reject {where}?\n{escape(item.summary)}"),
        {
            "type": "input",
            "block_id": REJECT_REASON_BLOCK,
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {
                "type": "plain_text_input",
                "action_id": _INPUT_ACTION,
                "multiline": True,
                "min_length": 1,
                "max_length": 2000,
            },
            "hint": {"type": "plain_text", "text": "Kept in the audit log and shown on the item."},
        },
    ]
    return _modal(REJECT_CALLBACK, "Reject output", "Reject", item.review_id, digest, blocks)


def _modal(
    callback: str, title: str, submit: str, review_id: str, digest: str, blocks: list[JsonObject]
) -> JsonObject:
    metadata = {"review_id": review_id, "digest": digest}
    return {
        "type": "modal",
        "callback_id": callback,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": blocks,
    }


def _controls(schema: JsonObject | None, output: JsonObject | None) -> list[FormField]:
    """The form's leaf controls; nested objects are flattened (labels say where they belong)."""
    if not schema:
        return []
    flat: list[FormField] = []

    def walk(controls: list[FormField], prefix: str) -> None:
        for control in controls:
            if control.widget == "fieldset":
                walk(control.children, f"{prefix}{control.label} / ")
            else:
                control.label = clip(prefix + control.label, 48)
                flat.append(control)

    walk(build_fields(schema, output), "")
    return flat


def _fits_select(control: FormField) -> bool:
    return 0 < len(control.options) <= _SELECT_OPTIONS_MAX and all(
        len(option) <= _OPTION_VALUE_MAX for option in control.options
    )


def _input_block(control: FormField) -> JsonObject:
    element: JsonObject = {"action_id": _INPUT_ACTION}
    if control.widget == "select" and _fits_select(control):
        element |= {"type": "static_select", "options": [_option(o) for o in control.options]}
        if control.value in control.options:
            element["initial_option"] = _option(control.value)
    elif control.widget == "checkbox":
        element |= {"type": "checkboxes", "options": [_option("Yes", _CHECKED)]}
        if control.checked:
            element["initial_options"] = [_option("Yes", _CHECKED)]
    else:
        multiline = control.widget in ("textarea", "lines", "json")
        limit = control.max_length if control.widget in ("text", "textarea") else None
        element |= {
            "type": "plain_text_input",
            "multiline": multiline,
            "max_length": min(limit or _INPUT_MAX, _INPUT_MAX),
        }
        if control.value:
            element["initial_value"] = control.value
        placeholder = _PLACEHOLDERS.get(control.widget)
        if control.widget == "number" and control.step == "1":
            placeholder = "a whole number"
        if control.widget == "select":  # too many choices for a menu: typed, checked on submit
            placeholder = "one of: " + ", ".join(control.options)
        if placeholder:
            element["placeholder"] = {"type": "plain_text", "text": clip(placeholder, 150)}
    block: JsonObject = {
        "type": "input",
        "block_id": control.name,
        "optional": control.widget == "checkbox" or not control.required,
        "label": {"type": "plain_text", "text": control.label or control.path},
        "element": element,
    }
    if control.description:
        block["hint"] = {"type": "plain_text", "text": clip(control.description, _LABEL_MAX)}
    return block


_CHECKED = "on"
_PLACEHOLDERS = {"number": "a number", "lines": "one per line", "json": "JSON"}


def _option(label: str, value: str | None = None) -> JsonObject:
    text = {"type": "plain_text", "text": clip(label, _OPTION_TEXT_MAX)}
    return {"text": text, "value": value or label}


def parse_edit_submission(
    item: ReviewItem, values: JsonObject
) -> tuple[JsonObject, dict[str, str]]:
    """Read an Edit modal's ``view.state.values`` back into the edited output.

    Fields the modal did not show (too long for Slack) keep their current value. The output is
    validated against the step's output model when it is importable here (the workflow checks
    every edit again regardless).

    Returns:
        The edited output and the errors by block id, in the shape of Slack's
        ``response_action: errors``.
    """
    schema = item.output_schema or {}
    form: dict[str, str] = {}
    for control in _controls(schema, item.output):
        state = (values.get(control.name) or {}).get(_INPUT_ACTION)
        if not isinstance(state, dict):  # not shown in Slack: keep what it was
            if control.widget != "checkbox":
                form[control.name] = control.value
            elif control.checked:
                form[control.name] = _CHECKED
            continue
        if state.get("type") == "checkboxes":
            if state.get("selected_options"):
                form[control.name] = _CHECKED
        elif state.get("type") == "static_select":
            selected = state.get("selected_option") or {}
            form[control.name] = str(selected.get("value") or "")
        else:
            form[control.name] = str(state.get("value") or "")
    output, problems = read_form(schema, form)
    if not problems:
        output, problems = validate_output(item.output_model, output)
    shown = [key for key in values if key.startswith(FIELD_PREFIX)]
    errors: dict[str, str] = {}
    for path, message in problems.items():
        block_id = FIELD_PREFIX + path
        while block_id not in shown and "." in block_id[len(FIELD_PREFIX) :]:
            block_id = block_id.rsplit(".", 1)[0]  # a nested error lands on the nearest input
        if block_id not in shown:
            block_id = shown[0] if shown else block_id
        errors.setdefault(block_id, clip(message, 150))
    return output, errors
