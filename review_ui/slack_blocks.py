"""Block Kit for review items, as pure functions: the review message, its outcome, timeout notes,
and the Edit / Reject modals (the Edit modal is generated from the item's output JSON schema).

Nothing here does I/O. ``activities.slack`` posts these blocks; ``review_ui.slack_interactions``
opens the modals and reads their submissions back with ``parse_edit_submission``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from review_ui.schema_form import FIELD_PREFIX, FormField, build_fields, read_form, validate_output
from tether.store.reviews import ReviewItem

__all__ = [
    "ACTION_APPROVE",
    "ACTION_EDIT",
    "ACTION_REJECT",
    "EDIT_CALLBACK",
    "REJECT_CALLBACK",
    "REJECT_REASON_BLOCK",
    "ButtonValue",
    "edit_modal",
    "message_text",
    "nudge_text",
    "outcome_blocks",
    "parse_button_value",
    "parse_edit_submission",
    "reject_modal",
    "review_blocks",
    "review_url",
    "timed_out_blocks",
]

JsonObject = dict[str, Any]

ACTION_APPROVE = "tether_approve"
ACTION_REJECT = "tether_reject"
ACTION_EDIT = "tether_edit"
EDIT_CALLBACK = "tether_edit"
REJECT_CALLBACK = "tether_reject"
REJECT_REASON_BLOCK = "reason"
_INPUT_ACTION = "value"

# Slack's documented limits: a longer text makes the whole call fail with invalid_blocks.
_SECTION_TEXT_MAX = 3000
_HEADER_MAX = 150
_INPUT_MAX = 3000
_OPTION_TEXT_MAX = 75
_OPTION_VALUE_MAX = 150
_SELECT_OPTIONS_MAX = 100
_MODAL_BLOCKS_MAX = 100
_LABEL_MAX = 2000

_REASONS = {
    "low_confidence": "low confidence",
    "escalated": "escalated: confidence well below the bar",
    "blocked": "blocked by the confidence gate",
    "invalid_output": "the model's output failed its schema",
    "over_budget": "more spend needs approval",
    "provider_failure": "every model failed",
}
_CHANNELS = {
    "web": "the web queue",
    "slack": "Slack",
    "api": "the API",
    "cli": "the CLI",
    "timeout": "the timeout policy",
}
_OUTCOMES = {
    "approve": (":white_check_mark:", "Approved"),
    "reject": (":x:", "Rejected"),
    "edit": (":pencil2:", "Edited and approved"),
    "retry": (":repeat:", "Sent back for a retry"),
}


@dataclass(frozen=True)
class ButtonValue:
    """What a button carries: the item and the digest of the output the message showed."""

    review_id: str
    digest: str


def parse_button_value(raw: str) -> ButtonValue | None:
    """Read a button's (or a modal's private_metadata) value; None when it is not ours."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    review_id, digest = data.get("review_id"), data.get("digest")
    if not isinstance(review_id, str) or not isinstance(digest, str) or not review_id:
        return None
    return ButtonValue(review_id=review_id, digest=digest)


def _button_value(item: ReviewItem) -> str:
    return json.dumps(
        {"review_id": item.review_id, "digest": item.output_digest}, separators=(",", ":")
    )


# --- the review message -------------------------------------------------------------------


def review_url(public_url: str, review_id: str) -> str:
    """The item's page in the web queue (review ids contain ``:`` and so are encoded)."""
    return f"{public_url.rstrip('/')}/reviews/{quote(review_id, safe='')}"


def message_text(item: ReviewItem) -> str:
    """The notification fallback text (shown in push notifications and by screen readers)."""
    return _clip(f"Review needed: {item.workflow} / {item.step}: {item.summary}", 300)


def review_blocks(
    item: ReviewItem, public_url: str, *, escalated: bool = False
) -> list[JsonObject]:
    """The message announcing ``item``: what, why, confidence, cost, a link, and the buttons."""
    title = "Escalated review" if escalated else "Review needed"
    blocks: list[JsonObject] = [
        _header(f"{title}: {item.workflow} · {item.step}"),
        _section(_escape(item.summary)),
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Workflow*\n{_escape(item.workflow)}"),
                _mrkdwn(f"*Step*\n{_escape(item.step)}"),
                _mrkdwn(f"*Why*\n{_REASONS.get(item.reason, _escape(item.reason))}"),
                _mrkdwn(f"*Confidence*\n{_score(item.confidence_score)}"),
                _mrkdwn(f"*Cost so far*\n${item.cost_usd:.4f}"),
                _mrkdwn(f"*Due*\n{_date(item.due_at or item.expires_at)}"),
            ],
        },
    ]
    reasons = _confidence_reasons(item)
    if reasons:
        blocks.append(
            _section("*Confidence notes*\n" + "\n".join(f"• {_escape(r)}" for r in reasons))
        )
    preview = _output_preview(item.output)
    if preview:
        blocks.append(_section(f"*Output*\n{preview}"))
    blocks.append(_link_context(item, public_url))
    buttons = _buttons(item)
    if buttons:
        blocks.append({"type": "actions", "block_id": "tether_review_actions", "elements": buttons})
    return blocks


def _buttons(item: ReviewItem) -> list[JsonObject]:
    value = _button_value(item)
    approval_only = item.reason == "over_budget"
    no_output = item.reason in ("invalid_output", "provider_failure")
    buttons: list[JsonObject] = []
    if not no_output:
        buttons.append(_button("Approve", ACTION_APPROVE, value, "primary"))
    buttons.append(_button("Reject", ACTION_REJECT, value, "danger"))
    if not approval_only and item.output_schema and item.reason != "provider_failure":
        buttons.append(_button("Edit", ACTION_EDIT, value, None))
    return buttons


def _button(text: str, action_id: str, value: str, style: str | None) -> JsonObject:
    button: JsonObject = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def outcome_blocks(item: ReviewItem, public_url: str) -> list[JsonObject]:
    """The message once decided, whichever front-end decided: who, what, via where; no buttons."""
    emoji, verb = _OUTCOMES.get(item.decision or "", (":grey_question:", item.status.capitalize()))
    via = _CHANNELS.get(item.decided_via or "", item.decided_via or "an unknown channel")
    when = _date(item.decided_at) if item.decided_at else "just now"
    line = f"{emoji} *{verb}* by {_escape(item.reviewer or 'unknown')} via {via} · {when}"
    if item.decision_reason:
        line += "\n>" + _escape(_clip(item.decision_reason, 1000)).replace("\n", "\n>")
    return [
        _header(f"Reviewed: {item.workflow} · {item.step}"),
        _section(_escape(item.summary)),
        _section(line),
        _link_context(item, public_url),
    ]


def timed_out_blocks(item: ReviewItem, public_url: str) -> list[JsonObject]:
    """The message after the review's time ran out: the buttons go, the policy's default follows."""
    return [
        _header(f"Review closed: {item.workflow} · {item.step}"),
        _section(_escape(item.summary)),
        _section(":hourglass: *No decision in time.* The workflow's timeout policy takes over."),
        _link_context(item, public_url),
    ]


def nudge_text(
    item: ReviewItem, kind: Literal["remind", "escalate", "default"], public_url: str
) -> str:
    """The threaded note for a fired timeout."""
    link = f"<{review_url(public_url, item.review_id)}|open it in Tether>"
    if kind == "remind":
        due = _date(item.due_at)
        return f":bell: Reminder: this review still needs a decision (due {due}); {link}."
    if kind == "escalate":
        roles = ", ".join(item.allowed_roles) or "the escalation role"
        return f":rotating_light: Escalated: no decision yet; now open to {_escape(roles)}; {link}."
    return ":hourglass: No decision in time: the workflow's policy default is being taken."


def _link_context(item: ReviewItem, public_url: str) -> JsonObject:
    url = review_url(public_url, item.review_id)
    return {
        "type": "context",
        "elements": [_mrkdwn(f"<{url}|Open in Tether> · run `{_escape(item.run_id)}`")],
    }


def _confidence_reasons(item: ReviewItem) -> list[str]:
    reasons = (item.confidence or {}).get("reasons") or []
    return [_clip(str(r), 200) for r in reasons[:8]]


def _output_preview(output: JsonObject | None) -> str:
    if not output:
        return ""
    lines = []
    for key, value in output.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"*{_escape(key)}*: {_escape(_clip(shown, 300))}")
    return _clip("\n".join(lines), _SECTION_TEXT_MAX - 20)


# --- modals -------------------------------------------------------------------------------
# The Edit modal is the web edit form (``review_ui.schema_form``) rendered in Block Kit, and a
# submission is read back through the same code, so both front-ends accept the same edits.


def edit_modal(item: ReviewItem, digest: str) -> JsonObject:
    """The Edit modal, generated from the item's output schema and prefilled with its output."""
    blocks: list[JsonObject] = [
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    f"*{_escape(item.workflow)} · {_escape(item.step)}*: your edit is checked "
                    "against the step's output schema, then replaces the model's output."
                )
            ],
        }
    ]
    for control in _controls(item.output_schema, item.output)[: _MODAL_BLOCKS_MAX - 1]:
        if len(control.value) > _INPUT_MAX:
            # Slack would cut the prefilled text, and saving would silently truncate the output.
            label = _escape(control.label)
            blocks.append(_section(f"*{label}* is too long to edit in Slack and is kept as it "
                                   "is; edit it on the web page instead."))  # fmt: skip
            continue
        blocks.append(_input_block(control))
    return _modal(EDIT_CALLBACK, "Edit output", "Save edit", item.review_id, digest, blocks)


def reject_modal(item: ReviewItem, digest: str) -> JsonObject:
    """The small modal asking why: a rejection needs a reason."""
    where = f"*{_escape(item.workflow)} · {_escape(item.step)}*"
    blocks: list[JsonObject] = [
        _section(f"Reject {where}?\n{_escape(item.summary)}"),
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
                control.label = _clip(prefix + control.label, 48)
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
            element["placeholder"] = {"type": "plain_text", "text": _clip(placeholder, 150)}
    block: JsonObject = {
        "type": "input",
        "block_id": control.name,
        "optional": control.widget == "checkbox" or not control.required,
        "label": {"type": "plain_text", "text": control.label or control.path},
        "element": element,
    }
    if control.description:
        block["hint"] = {"type": "plain_text", "text": _clip(control.description, _LABEL_MAX)}
    return block


_CHECKED = "on"
_PLACEHOLDERS = {"number": "a number", "lines": "one per line", "json": "JSON"}


def _option(label: str, value: str | None = None) -> JsonObject:
    text = {"type": "plain_text", "text": _clip(label, _OPTION_TEXT_MAX)}
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
        errors.setdefault(block_id, _clip(message, 150))
    return output, errors


# --- text ---------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header(text: str) -> JsonObject:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, _HEADER_MAX)}}


def _section(text: str) -> JsonObject:
    return {"type": "section", "text": _mrkdwn(_clip(text, _SECTION_TEXT_MAX))}


def _mrkdwn(text: str) -> JsonObject:
    return {"type": "mrkdwn", "text": text}


def _score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.2f}"


def _date(when: datetime | None) -> str:
    if when is None:
        return "no due time"
    if when.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
        when = when.replace(tzinfo=UTC)
    stamp = int(when.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when.isoformat(timespec='minutes')}>"
