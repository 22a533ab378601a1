"""The Edit and Reject modals a Slack click opens, and reading an Edit submission back.

The Edit modal is the web edit form (``review_ui.schema_form``) rendered in Block Kit, and a
submission is read back through the same code, so both front-ends accept the same edits.
"""

from __future__ import annotations

import json

from activities.block_kit import JsonObject, block_id, clip, escape, mrkdwn, section
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
    """The Edit modal, generated from the item's output schema and prefilled with its output.

    Slack holds at most 100 blocks: fields beyond that, and values too long for a text box,
    are kept as they are and named in the modal (never dropped unsaid). A modal with nothing
    left to edit has no Save button.
    """
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
    controls = _controls(item.output_schema, item.output)
    room = _MODAL_BLOCKS_MAX - len(blocks)
    # One block is kept for naming what does not fit, when something does not.
    shown, left_out = (controls, []) if len(controls) <= room else (
        controls[: room - 1], controls[room - 1 :]
    )  # fmt: skip
    editable = 0
    for control in shown:
        if len(control.value) > _INPUT_MAX:
            # Slack would cut the prefilled text, and saving would silently truncate the output.
            label = escape(control.label)
            blocks.append(section(f"*{label}* is too long to edit in Slack and is kept as it "
                                   "is; edit it on the web page instead."))  # fmt: skip
            continue
        blocks.append(_input_block(control))
        editable += 1
    if left_out:
        names = ", ".join(escape(c.label or c.path) for c in left_out)
        blocks.append(section(f"*{len(left_out)} more fields* do not fit in a Slack form and "
                               f"are kept as they are; edit them on the web page: {names}"))  # fmt: skip
    if not editable:
        blocks.append(section("Nothing here can be edited in Slack; use the web page."))
    submit = "Save edit" if editable else None
    return _modal(EDIT_CALLBACK, "Edit output", submit, item.review_id, digest, blocks)


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
    callback: str,
    title: str,
    submit: str | None,
    review_id: str,
    digest: str,
    blocks: list[JsonObject],
) -> JsonObject:
    metadata = {"review_id": review_id, "digest": digest}
    view: JsonObject = {
        "type": "modal",
        "callback_id": callback,
        "title": {"type": "plain_text", "text": title},
        "close": {"type": "plain_text", "text": "Cancel" if submit else "Close"},
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": blocks,
    }
    if submit:
        view["submit"] = {"type": "plain_text", "text": submit}
    return view


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
    # An option's value must be 1 to 150 characters: an empty choice makes it a typed field.
    return 0 < len(control.options) <= _SELECT_OPTIONS_MAX and all(
        0 < len(option) <= _OPTION_VALUE_MAX for option in control.options
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
        "block_id": block_id(control.name),
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
    # Slack refuses an empty option text (and the whole modal with it).
    shown = clip(label, _OPTION_TEXT_MAX) if label.strip() else _BLANK
    return {"text": {"type": "plain_text", "text": shown}, "value": value or label}


_BLANK = "(blank)"


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
    controls = _controls(schema, item.output)
    ids = {control.name: block_id(control.name) for control in controls}
    for control in controls:
        state = (values.get(ids[control.name]) or {}).get(_INPUT_ACTION)
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
        name = FIELD_PREFIX + path
        while ids.get(name, name) not in shown and "." in name[len(FIELD_PREFIX) :]:
            name = name.rsplit(".", 1)[0]  # a nested error lands on the nearest input
        where = ids.get(name, name)
        if where not in shown:
            where = shown[0] if shown else where
        errors.setdefault(where, clip(message, 150))
    return output, errors
