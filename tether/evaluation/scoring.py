"""Scores of one output against the expected one: exact match and field by field."""

from __future__ import annotations

from typing import Any


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


def field_matches(output: dict[str, Any] | None, expected: dict[str, Any]) -> dict[str, bool]:
    """For each field of ``expected``: does ``output`` hold the same value (strings compared
    without case or surrounding space)."""
    return {
        name: output is not None and name in output and _same(output[name], value)
        for name, value in expected.items()
    }


def exact_match(output: dict[str, Any] | None, expected: dict[str, Any]) -> bool:
    """Every expected field matches (the whole output, when the expected output is whole, as
    a reviewer's accepted or corrected output is)."""
    return output is not None and all(field_matches(output, expected).values())
