"""The edit form, generated from a step's output JSON schema, and reading it back into JSON.

Strings become inputs (textareas when long), enums selects, booleans checkboxes, numbers number
inputs, lists of strings one-per-line textareas, nested objects fieldsets. Anything else
(lists of objects, free dicts) is edited as JSON text. Optional fields accept an empty value.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

Widget = Literal["text", "textarea", "select", "checkbox", "number", "lines", "json", "fieldset"]
FIELD_PREFIX = "f."
NULL_SUFFIX = ".__none"
_LONG_TEXT = 120


@dataclass
class FormField:
    """One control of the generated form (or a fieldset holding more)."""

    path: str
    label: str
    widget: Widget
    required: bool = False
    nullable: bool = False
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    children: list[FormField] = field(default_factory=list)
    description: str | None = None
    step: str = "any"
    max_length: int | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return FIELD_PREFIX + self.path

    @property
    def null_name(self) -> str:
        return self.name + NULL_SUFFIX


def build_fields(
    schema: dict[str, Any],
    output: Mapping[str, Any] | None,
    *,
    submitted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[FormField]:
    """The controls for ``schema``, filled from the submitted form (re-render) or ``output``."""
    return _object_fields(
        schema, _resolve(schema, schema), output or {}, "", submitted, errors or {}
    )


def field_paths(fields: list[FormField]) -> set[str]:
    """Every path a control of ``fields`` edits (to spot errors no control can show)."""
    paths: set[str] = set()
    for control in fields:
        paths.add(control.path)
        paths |= field_paths(control.children)
    return paths


def read_form(
    schema: dict[str, Any], form: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON object a submitted edit form describes, and per-field conversion errors."""
    errors: dict[str, str] = {}
    data = _read_object(schema, _resolve(schema, schema), "", form, errors)
    return data, errors


def validate_output(
    model_path: str | None, data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate ``data`` with the step's output model when it can be loaded here.

    Returns the normalised output and per-field errors (path -> message). Without the model the
    data is returned as is: the workflow validates every edit again anyway.
    """
    model = _output_model(model_path)
    if model is None:
        return data, {}
    try:
        return model.model_validate(data).model_dump(mode="json"), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            # A list item's error belongs to the list's control.
            while loc and loc[-1].isdigit():
                loc.pop()
            errors.setdefault(".".join(loc) or "", error["msg"])
        return data, errors


# --- building -----------------------------------------------------------------------------------


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        merged = dict(target) | {k: v for k, v in node.items() if k != "$ref"}
        return _resolve(root, merged)
    return node


def _unwrap_optional(root: dict[str, Any], node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        others = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(others) == 1 and len(others) < len(options):
            inner = _resolve(root, others[0])
            extra = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            return inner | extra, True
    node = _resolve(root, node)
    return node, node.get("type") == "null"


def _widget(node: dict[str, Any]) -> Widget:
    kind = node.get("type")
    if "enum" in node or "const" in node:
        return "select"
    if kind == "string":
        max_length = node.get("maxLength")
        return "text" if isinstance(max_length, int) and max_length <= _LONG_TEXT else "textarea"
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "array":
        items = node.get("items")
        return "lines" if isinstance(items, dict) and items.get("type") == "string" else "json"
    if kind == "object" and isinstance(node.get("properties"), dict):
        return "fieldset"
    return "json"


def _object_fields(
    root: dict[str, Any],
    node: dict[str, Any],
    values: Mapping[str, Any],
    prefix: str,
    submitted: Mapping[str, str] | None,
    errors: Mapping[str, str],
) -> list[FormField]:
    required = set(node.get("required", []))
    fields: list[FormField] = []
    for name, raw_prop in node.get("properties", {}).items():
        prop, nullable = _unwrap_optional(root, raw_prop)
        path = f"{prefix}{name}"
        widget = _widget(prop)
        value = values.get(name) if isinstance(values, Mapping) else None
        control = FormField(
            path=path,
            label=str(raw_prop.get("title") or prop.get("title") or name.replace("_", " ").title()),
            widget=widget,
            required=name in required and not nullable,
            nullable=nullable or name not in required,
            description=raw_prop.get("description") or prop.get("description"),
            max_length=prop.get("maxLength"),
            error=errors.get(path),
        )
        if widget == "fieldset":
            nested = value if isinstance(value, Mapping) else {}
            control.children = _object_fields(root, prop, nested, path + ".", submitted, errors)
            if submitted is not None:
                control.checked = FIELD_PREFIX + path + NULL_SUFFIX in submitted
            else:
                control.checked = nullable and value is None
        elif widget == "select":
            control.options = [str(o) for o in prop.get("enum", [prop.get("const")])]
        elif widget == "number":
            control.step = "1" if prop.get("type") == "integer" else "any"
        if widget != "fieldset":
            _fill(control, value, submitted)
        fields.append(control)
    return fields


def _fill(control: FormField, value: Any, submitted: Mapping[str, str] | None) -> None:
    if submitted is not None:
        control.checked = control.name in submitted
        control.value = submitted.get(control.name, "")
        return
    if control.widget == "checkbox":
        control.checked = bool(value)
    elif value is None:
        control.value = ""
    elif control.widget == "lines":
        control.value = "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
    elif control.widget == "json":
        control.value = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        control.value = str(value).lower() if isinstance(value, bool) else str(value)


# --- reading ------------------------------------------------------------------------------------


def _read_object(
    root: dict[str, Any],
    node: dict[str, Any],
    prefix: str,
    form: Mapping[str, str],
    errors: dict[str, str],
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, raw_prop in node.get("properties", {}).items():
        prop, nullable = _unwrap_optional(root, raw_prop)
        path = f"{prefix}{name}"
        key = FIELD_PREFIX + path
        widget = _widget(prop)
        if widget == "fieldset":
            if nullable and key + NULL_SUFFIX in form:
                data[name] = None
            else:
                data[name] = _read_object(root, prop, path + ".", form, errors)
            continue
        if widget == "checkbox":
            data[name] = key in form
            continue
        text = form.get(key, "")
        if text.strip() == "":
            if nullable:
                data[name] = None
            elif widget == "lines":
                data[name] = []
            elif name not in node.get("required", []):
                pass  # left out: the model's default applies
            elif widget in ("number", "json"):
                errors[path] = "required"
            else:
                data[name] = text  # the model says whether an empty text is acceptable
            continue
        data[name] = _convert(widget, prop, text, path, errors)
    return data


def _convert(
    widget: Widget, prop: dict[str, Any], text: str, path: str, errors: dict[str, str]
) -> Any:
    if widget == "number":
        try:
            return int(text) if prop.get("type") == "integer" else float(text)
        except ValueError:
            errors[path] = (
                "enter a whole number" if prop.get("type") == "integer" else "enter a number"
            )
            return text
    if widget == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if widget == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            errors[path] = f"not valid JSON: {exc.msg} (line {exc.lineno})"
            return text
    return text


def _output_model(path: str | None) -> type[BaseModel] | None:
    # Only models from modules already loaded or from workflows/ are imported: the path comes
    # from the store, and the UI must not import arbitrary modules on its say-so.
    if not path or ":" not in path:
        return None
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None and module_name.startswith("workflows."):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return target
    return None
