"""Declarative rule checks on a step's output (``RuleCheck`` in the policy file)."""

from __future__ import annotations

import re
from typing import Any, Final

from policies.models import RuleCheck

__all__ = ["MISSING", "check_rule", "check_rules", "field_value"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Returned by ``field_value`` when the dotted path does not lead to a value."""


def field_value(output: dict[str, Any], field: str) -> Any:
    """Returns the value at dotted path ``field`` (``a.b``, ``items.0.name``), or ``MISSING``."""
    current: Any = output
    for part in field.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def check_rules(rules: list[RuleCheck], output: dict[str, Any]) -> dict[str, bool]:
    """Checks every rule against ``output``; returns rule name -> passed.

    A missing or null field fails its rule. A rule with no constraint only checks presence.
    """
    return {rule.name: check_rule(rule, output) for rule in rules}


def check_rule(rule: RuleCheck, output: dict[str, Any]) -> bool:
    """Checks one rule against ``output``; see ``check_rules``."""
    value = field_value(output, rule.field)
    if value is MISSING or value is None:
        return False
    return all(
        (
            _length_ok(value, rule.min_length, rule.max_length),
            rule.one_of is None or _one_of_ok(value, rule.one_of),
            rule.not_contains is None or _not_contains_ok(value, rule.not_contains),
            rule.pattern is None or _pattern_ok(value, rule.pattern),
        )
    )


def _length_ok(value: Any, min_length: int | None, max_length: int | None) -> bool:
    if min_length is None and max_length is None:
        return True
    if not isinstance(value, str | list | dict):
        return False
    size = len(value.strip()) if isinstance(value, str) else len(value)
    # Whitespace padding must not satisfy a minimum length.
    return (min_length is None or size >= min_length) and (max_length is None or size <= max_length)


def _one_of_ok(value: Any, allowed: list[str]) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, str) and item in allowed for item in value)
    return isinstance(value, str) and value in allowed


def _not_contains_ok(value: Any, forbidden: list[str]) -> bool:
    texts = _texts(value)
    lowered = [phrase.lower() for phrase in forbidden]
    return not any(phrase in text.lower() for text in texts for phrase in lowered)


def _pattern_ok(value: Any, pattern: str) -> bool:
    if not isinstance(value, str):
        return False
    return re.search(pattern, value) is not None


def _texts(value: Any) -> list[str]:
    """Every string inside ``value`` (a forbidden phrase must not hide in a nested list)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    return []
