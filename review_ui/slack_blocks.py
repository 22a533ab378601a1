"""Block Kit for review items, as pure functions: the review message, its outcome, timeout notes,
and the Edit / Reject modals (the Edit modal is generated from the item's output JSON schema).

Nothing here does I/O. ``activities.slack`` posts these blocks; ``review_ui.slack_interactions``
opens the modals and reads their submissions back with ``parse_edit_submission``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from tether.store.reviews import ReviewItem

__all__ = [
    "ACTION_APPROVE",
    "ACTION_EDIT",
    "ACTION_REJECT",
    "EDIT_CALLBACK",
    "REJECT_CALLBACK",
    "REJECT_REASON_BLOCK",
    "ButtonValue",
    "FormField",
    "edit_modal",
    "form_fields",
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
_OMIT = object()

# Slack's documented limits: a longer text makes the whole call fail with invalid_blocks.
_SECTION_TEXT_MAX = 3000
_HEADER_MAX = 150
_INPUT_MAX = 3000
_OPTION_TEXT_MAX = 75
_OPTION_VALUE_MAX = 150
_SELECT_OPTIONS_MAX = 100
_MODAL_BLOCKS_MAX = 100
_LABEL_MAX = 2000
_MULTILINE_FROM = 150
"""Strings allowed to be longer than this get a multiline box."""

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

FieldKind = Literal["text", "multiline", "select", "checkbox", "integer", "number", "lines", "json"]


@dataclass(frozen=True)
class FormField:
    """One editable field of an output, derived from its JSON schema."""

    name: str
    label: str
    kind: FieldKind
    required: bool
    nullable: bool
    hint: str | None = None
    options: tuple[str, ...] = ()
    item_options: tuple[str, ...] = ()
    """For lists: the allowed values of each line (an enum of items)."""
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    expects: Literal["object", "array", "any"] = "any"
    enum_values: tuple[Any, ...] = field(default=())
    """The enum's JSON values, matched by their text form (enums may hold numbers)."""

    @property
    def block_id(self) -> str:
        return f"field:{self.name}"


def form_fields(schema: JsonObject | None, current: JsonObject | None) -> list[FormField]:
    """The form for an output schema (pydantic's ``model_json_schema``), one field per property."""
    if not schema:
        return []
    defs = schema.get("$defs") or schema.get("definitions") or {}
    required = set(schema.get("required") or [])
    current = current or {}
    fields: list[FormField] = []
    for name, raw in (schema.get("properties") or {}).items():
        prop, nullable = _resolve(raw, defs)
        label = _clip(
            str(raw.get("title") or prop.get("title") or name.replace("_", " ").capitalize()), 48
        )
        hint = raw.get("description") or prop.get("description")
        base = {
            "name": name,
            "label": label,
            "required": name in required and not nullable,
            "nullable": nullable,
            "hint": _clip(str(hint), _LABEL_MAX) if hint else None,
        }
        fields.append(_field_for(prop, base, current.get(name), defs))
    return fields


def _field_for(prop: JsonObject, base: dict[str, Any], value: Any, defs: JsonObject) -> FormField:
    kind = prop.get("type")
    enum = prop.get("enum") if "enum" in prop else ([prop["const"]] if "const" in prop else None)
    if enum is not None:
        labels = tuple(str(v) for v in enum)
        fits = len(labels) <= _SELECT_OPTIONS_MAX and all(
            len(v) <= _OPTION_VALUE_MAX for v in labels
        )
        return FormField(
            **base, kind="select" if fits else "text", options=labels, enum_values=tuple(enum)
        )
    if kind == "boolean":
        return FormField(**(base | {"required": False}), kind="checkbox")
    if kind in ("integer", "number"):
        return FormField(
            **base,
            kind=kind,
            minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
            exclusive_minimum=prop.get("exclusiveMinimum"),
            exclusive_maximum=prop.get("exclusiveMaximum"),
        )
    if kind == "string":
        max_length = prop.get("maxLength")
        text = value if isinstance(value, str) else ""
        # A limit above one line's worth says "prose"; without a limit, the current value decides.
        long = max_length > _MULTILINE_FROM if max_length is not None else len(text) > 80
        return FormField(
            **base,
            kind="multiline" if long or "\n" in text else "text",
            min_length=prop.get("minLength"),
            max_length=max_length,
            pattern=prop.get("pattern"),
        )
    if kind == "array":
        items, _ = _resolve(prop.get("items") or {}, defs)
        item_enum = items.get("enum")
        if items.get("type") == "string" or (
            item_enum and all(isinstance(v, str) for v in item_enum)
        ):
            return FormField(
                **base,
                kind="lines",
                item_options=tuple(item_enum or ()),
                min_items=prop.get("minItems"),
                max_items=prop.get("maxItems"),
                min_length=items.get("minLength"),
                max_length=items.get("maxLength"),
            )
        return FormField(**base, kind="json", expects="array")
    return FormField(**base, kind="json", expects="object" if kind == "object" else "any")


def _resolve(prop: JsonObject, defs: JsonObject) -> tuple[JsonObject, bool]:
    """Follow ``$ref`` and unwrap ``Optional[...]`` (``anyOf`` with null) to the field's schema."""
    nullable = False
    for _ in range(10):  # refs chain only a few levels deep; a cycle must not hang the form
        if "$ref" in prop:
            target = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
            prop = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
            continue
        variants = prop.get("anyOf") or prop.get("oneOf")
        if variants:
            others = [v for v in variants if v.get("type") != "null"]
            nullable = nullable or len(others) < len(variants)
            if len(others) == 1:
                rest = {k: v for k, v in prop.items() if k not in ("anyOf", "oneOf")}
                prop = {**others[0], **rest}
                continue
            return {"title": prop.get("title")}, nullable
        all_of = prop.get("allOf")
        if all_of and len(all_of) == 1:
            prop = {**all_of[0], **{k: v for k, v in prop.items() if k != "allOf"}}
            continue
        break
    if prop.get("type") == "null":
        return {}, True
    if isinstance(prop.get("type"), list):
        types = [t for t in prop["type"] if t != "null"]
        nullable = nullable or len(types) < len(prop["type"])
        prop = {**prop, "type": types[0] if len(types) == 1 else None}
    return prop, nullable


def edit_modal(item: ReviewItem, digest: str) -> JsonObject:
    """The Edit modal, generated from the item's output schema and prefilled with its output."""
    current = item.output or {}
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
    for spec in form_fields(item.output_schema, current)[: _MODAL_BLOCKS_MAX - 1]:
        value = current.get(spec.name)
        if len(_initial_text(spec, value)) > _INPUT_MAX:
            # Slack would cut the prefilled text, and saving would silently truncate the output.
            blocks.append(
                _section(
                    f"*{_escape(spec.label)}* is too long to edit in Slack; it is "
                    "kept as it is. Edit it on the web page instead."
                )
            )
            continue
        blocks.append(_input_block(spec, value))
    return _modal(EDIT_CALLBACK, "Edit output", "Save edit", item.review_id, digest, blocks)


def reject_modal(item: ReviewItem, digest: str) -> JsonObject:
    """The small modal asking why: a rejection needs a reason."""
    blocks: list[JsonObject] = [
        _section(
            f"Reject *{_escape(item.workflow)} · {_escape(item.step)}*?\n{_escape(item.summary)}"
        ),
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
            "hint": {
                "type": "plain_text",
                "text": "Recorded in the audit log and shown on the item.",
            },
        },
    ]
    return _modal(REJECT_CALLBACK, "Reject output", "Reject", item.review_id, digest, blocks)


def _modal(
    callback: str, title: str, submit: str, review_id: str, digest: str, blocks: list[JsonObject]
) -> JsonObject:
    return {
        "type": "modal",
        "callback_id": callback,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(
            {"review_id": review_id, "digest": digest}, separators=(",", ":")
        ),
        "blocks": blocks,
    }


def _input_block(spec: FormField, value: Any) -> JsonObject:
    element: JsonObject = {"action_id": _INPUT_ACTION}
    if spec.kind == "select":
        options = [_option(label) for label in spec.options]
        element |= {"type": "static_select", "options": options}
        if value is not None and str(value) in spec.options:
            element["initial_option"] = _option(str(value))
    elif spec.kind == "checkbox":
        element |= {"type": "checkboxes", "options": [_option("Yes", "true")]}
        if value is True:
            element["initial_options"] = [_option("Yes", "true")]
    else:
        text = _initial_text(spec, value)
        element |= {
            "type": "plain_text_input",
            "multiline": spec.kind in ("multiline", "lines", "json"),
        }
        limit = spec.max_length if spec.kind in ("text", "multiline") else None
        element["max_length"] = min(limit or _INPUT_MAX, _INPUT_MAX)
        if spec.kind in ("text", "multiline") and spec.min_length:
            element["min_length"] = min(spec.min_length, _INPUT_MAX)
        if text:
            element["initial_value"] = text
        placeholder = {"integer": "a whole number", "number": "a number", "lines": "one per line",
                       "json": "JSON"}.get(spec.kind)  # fmt: skip
        if placeholder:
            element["placeholder"] = {"type": "plain_text", "text": placeholder}
    block: JsonObject = {
        "type": "input",
        "block_id": spec.block_id,
        "optional": not spec.required,
        "label": {"type": "plain_text", "text": spec.label},
        "element": element,
    }
    if spec.hint:
        block["hint"] = {"type": "plain_text", "text": spec.hint}
    return block


def _initial_text(spec: FormField, value: Any) -> str:
    if value is None:
        return ""
    if spec.kind == "lines" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if spec.kind == "json":
        return json.dumps(value, ensure_ascii=False, indent=2)
    return str(value)


def _option(label: str, value: str | None = None) -> JsonObject:
    return {
        "text": {"type": "plain_text", "text": _clip(label, _OPTION_TEXT_MAX)},
        "value": value or label,
    }


# --- reading a submission -----------------------------------------------------------------


def parse_edit_submission(
    schema: JsonObject | None, current: JsonObject | None, values: JsonObject
) -> tuple[JsonObject, dict[str, str]]:
    """Read an Edit modal's ``view.state.values`` back into an output.

    Returns the edited output (fields the form did not show keep their current value) and the
    errors by block id, in the shape of Slack's ``response_action: errors``.
    """
    output: JsonObject = dict(current or {})
    errors: dict[str, str] = {}
    for spec in form_fields(schema, current)[: _MODAL_BLOCKS_MAX - 1]:
        state = (values.get(spec.block_id) or {}).get(_INPUT_ACTION)
        if not isinstance(state, dict):
            continue  # not in this submission: keep the current value
        try:
            value = _read_field(spec, state)
        except ValueError as exc:
            errors[spec.block_id] = _clip(str(exc), 150)
            continue
        if value is _OMIT:
            output.pop(spec.name, None)  # left empty: the schema's default applies
        else:
            output[spec.name] = value
    return output, errors


def _read_field(spec: FormField, state: JsonObject) -> Any:
    if spec.kind == "checkbox":
        return bool(state.get("selected_options"))
    if spec.kind == "select":
        option = state.get("selected_option")
        if not option:
            return _empty(spec)
        chosen = str(option.get("value"))
        for label, value in zip(spec.options, spec.enum_values, strict=False):
            if label == chosen:
                return value
        raise ValueError(f"choose one of: {', '.join(spec.options)}")
    text = state.get("value")
    if text is None or not str(text).strip():
        return _empty(spec)
    text = str(text)
    if spec.kind == "integer":
        try:
            number: float = int(text.strip().replace("_", ""))
        except ValueError:
            raise ValueError("enter a whole number, such as 42") from None
        return _bounded(spec, number)
    if spec.kind == "number":
        try:
            number = float(text.strip())
        except ValueError:
            raise ValueError("enter a number, such as 3.5") from None
        if not math.isfinite(number):
            raise ValueError("enter a finite number")
        return _bounded(spec, number)
    if spec.kind == "lines":
        return _lines(spec, text)
    if spec.kind == "json":
        return _json_value(spec, text)
    if spec.options and text not in spec.options:
        raise ValueError(f"must be one of: {', '.join(spec.options)}"[:150])
    return _string(spec, text)


def _empty(spec: FormField) -> Any:
    if spec.required:
        raise ValueError("this field is required")
    if spec.nullable:
        return None
    if spec.kind == "lines":
        return []
    if spec.kind in ("text", "multiline"):
        return ""
    return _OMIT


def _string(spec: FormField, text: str) -> str:
    if spec.min_length is not None and len(text) < spec.min_length:
        raise ValueError(f"needs at least {spec.min_length} characters")
    if spec.max_length is not None and len(text) > spec.max_length:
        raise ValueError(f"at most {spec.max_length} characters (this has {len(text)})")
    if spec.pattern is not None and re.search(spec.pattern, text) is None:
        raise ValueError(f"must match the pattern {spec.pattern}")
    return text


def _bounded(spec: FormField, number: float) -> float:
    if spec.minimum is not None and number < spec.minimum:
        raise ValueError(f"must be at least {spec.minimum:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"must be at most {spec.maximum:g}")
    if spec.exclusive_minimum is not None and number <= spec.exclusive_minimum:
        raise ValueError(f"must be more than {spec.exclusive_minimum:g}")
    if spec.exclusive_maximum is not None and number >= spec.exclusive_maximum:
        raise ValueError(f"must be less than {spec.exclusive_maximum:g}")
    return number


def _lines(spec: FormField, text: str) -> list[str]:
    items = [line.strip() for line in text.splitlines() if line.strip()]
    if spec.min_items is not None and len(items) < spec.min_items:
        raise ValueError(f"needs at least {spec.min_items} lines")
    if spec.max_items is not None and len(items) > spec.max_items:
        raise ValueError(f"at most {spec.max_items} lines (this has {len(items)})")
    for number, line in enumerate(items, start=1):
        if spec.item_options and line not in spec.item_options:
            raise ValueError(f"line {number}: must be one of {', '.join(spec.item_options)}")
        if spec.max_length is not None and len(line) > spec.max_length:
            raise ValueError(f"line {number}: at most {spec.max_length} characters")
        if spec.min_length is not None and len(line) < spec.min_length:
            raise ValueError(f"line {number}: needs at least {spec.min_length} characters")
    return items


def _json_value(spec: FormField, text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if spec.expects == "object" and not isinstance(value, dict):
        raise ValueError("must be a JSON object { ... }")
    if spec.expects == "array" and not isinstance(value, list):
        raise ValueError("must be a JSON list [ ... ]")
    return value


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
