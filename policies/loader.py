"""Loading the policy file: YAML in, a validated ``TetherPolicy`` out, or one clear error.

This is the only module of ``policies`` that does I/O (reading the file).
"""

from __future__ import annotations

import difflib
import itertools
import re
import types
from collections.abc import Iterator, Sequence
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from policies.effective import effective_for, overlay
from policies.models import ReviewPolicy, RuleCheck, StepConfidencePolicy, TetherPolicy
from policies.routing import simulated_model
from tether.core.errors import ConfigurationError

__all__ = [
    "DEFAULT_POLICY_SOURCE",
    "format_duration",
    "load_policy",
    "load_policy_text",
    "parse_duration",
]

DEFAULT_POLICY_SOURCE = "policies/default.yaml"
_MAX_REPORTED = 5
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_HINT = "use e.g. 30s, 15m, 4h, 2d, 1h30m or ISO-8601 such as PT4H"


def load_policy(path: Path | None = None) -> TetherPolicy:
    """Loads and validates a policy file; ``None`` loads the embedded ``policies/default.yaml``.

    Raises:
        ConfigurationError: The file cannot be read, is not valid YAML, or is not a valid
            policy. The one-line message names the file, the field path and the problem.
    """
    if path is None:
        embedded = resources.files("policies").joinpath("default.yaml")
        return load_policy_text(embedded.read_text(encoding="utf-8"), DEFAULT_POLICY_SOURCE)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: the policy file is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"{path}: cannot read the policy file: {reason}") from None
    return load_policy_text(text, source=str(path))


def load_policy_text(text: str, source: str = "<string>") -> TetherPolicy:
    """Parses and validates policy YAML; ``source`` names it in error messages.

    Raises:
        ConfigurationError: See ``load_policy``.
    """
    data = _parse_yaml(text, source)
    try:
        policy = TetherPolicy.model_validate(_expand_durations(data, TetherPolicy))
    except ValidationError as exc:
        raise ConfigurationError(f"{source}: {_describe(exc.errors(include_url=False))}") from exc
    problems = list(_consistency_problems(policy))
    if problems:
        raise ConfigurationError(f"{source}: {_join(problems)}")
    return policy


def parse_duration(text: str) -> timedelta | None:
    """Parses the short duration forms ``30s``, ``15m``, ``4h``, ``2d``, ``1w``, ``1h30m``.

    Returns:
        The duration, or None when ``text`` is not in a short form (pydantic then tries
        ISO-8601 and its other forms).
    """
    if not _DURATION.fullmatch(text):
        return None
    seconds = sum(
        float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(text)
    )
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """Formats a duration in the short form the policy file accepts, e.g. ``1d4h`` or ``90s``."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return f"{duration.total_seconds():g}s"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        amount, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


# --- YAML -------------------------------------------------------------------------------------


class _PolicyYamlLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently lets the last win."""


def _construct_mapping(loader: _PolicyYamlLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor" merges may be overridden by explicit keys on purpose
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node))


_PolicyYamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_PolicyYamlLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigurationError(f"{source}: invalid YAML at {where}{exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        raise ConfigurationError(f"{source}: the policy file is empty; it needs at least 'prices'")
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{source}: the top level must be a mapping of policy sections, "
            f"not a {type(data).__name__}"
        )
    return data


# --- Durations --------------------------------------------------------------------------------


def _expand_durations(value: Any, annotation: Any) -> Any:
    """Turns short duration strings into timedeltas wherever the schema expects a timedelta.

    Walking the schema rather than listing fields keeps new duration fields working.
    """
    target = _strip_optional(annotation)
    if target is timedelta and isinstance(value, str):
        duration = parse_duration(value)
        return value if duration is None else duration
    if _is_model(target) and isinstance(value, dict):
        fields = target.model_fields
        return {
            key: _expand_durations(item, fields[key].annotation) if key in fields else item
            for key, item in value.items()
        }
    origin = get_origin(target)
    if origin is dict and isinstance(value, dict):
        item_type = get_args(target)[1]
        return {key: _expand_durations(item, item_type) for key, item in value.items()}
    if origin is list and isinstance(value, list):
        item_type = get_args(target)[0]
        return [_expand_durations(item, item_type) for item in value]
    return value


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The policy model found at ``loc``, to list the fields allowed there."""
    current: Any = TetherPolicy
    for part in loc:
        if _is_model(current):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _strip_optional(field.annotation)
        elif get_origin(current) in (dict, list):
            current = _strip_optional(get_args(current)[-1])
        else:
            return None
    return current if _is_model(current) else None


# --- Error messages ---------------------------------------------------------------------------


def _describe(errors: list[ErrorDetails]) -> str:
    return _join([_describe_error(error) for error in errors])


def _join(problems: list[str]) -> str:
    shown = "; ".join(problems[:_MAX_REPORTED])
    hidden = len(problems) - _MAX_REPORTED
    return f"{shown}; and {hidden} more" if hidden > 0 else shown


def _describe_error(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    kind = error["type"]
    problem = error["msg"].removeprefix("Value error, ")
    if "[key]" in loc:
        loc = loc[: loc.index("[key]")]
        problem = f"invalid key: {problem}"
    elif kind == "extra_forbidden":
        problem = _unknown_field(loc)
    elif kind == "missing":
        problem = "required field is missing"
    elif kind.startswith("time_delta"):
        problem = f"not a valid duration ({_DURATION_HINT})"
    value = error.get("input")
    secret = any(isinstance(part, str) and "password" in part for part in loc)
    if kind not in ("extra_forbidden", "missing") and _is_scalar(value) and not secret:
        problem = f"{problem} (got {_short_repr(value)})"
    return f"{_dotted(loc)}: {problem}"


def _unknown_field(loc: list[str | int]) -> str:
    name = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown field"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; expected one of: {', '.join(allowed)}"


def _dotted(loc: Sequence[str | int]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


# --- Consistency across fields ----------------------------------------------------------------


def _consistency_problems(policy: TetherPolicy) -> Iterator[str]:
    """Problems no single field shows: unpriced models, bad merges, bad rules, duplicates."""
    yield from _pricing_problems(policy)
    yield from _step_problems("confidence", policy.confidence, policy.confidence)
    yield from _review_problems("review", policy.review)
    for workflow, section in policy.workflows.items():
        where = f"workflows.{workflow}"
        try:
            effective = effective_for(policy, workflow)
        except ConfigurationError as exc:
            yield str(exc)
            continue
        if section.review is not None:
            yield from _review_problems(f"{where}.review", effective.review)
        for step, override in section.steps.items():
            merged = overlay(policy.confidence, override)
            yield from _step_problems(f"{where}.steps.{step}", merged, override)
    yield from _reviewer_problems(policy)


def _pricing_problems(policy: TetherPolicy) -> Iterator[str]:
    priced = policy.prices
    reported: set[str] = set()
    for tier, models in policy.routing.tiers.items():
        for index, model in enumerate(models):
            if model not in priced:
                reported.add(model)
                yield f"routing.tiers.{tier}[{index}]: model {model!r} has no price in 'prices'"
    for source, target in policy.routing.downgrade.items():
        for model in (source, target):
            if model not in priced:
                reported.add(model)
                yield f"routing.downgrade.{source}: model {model!r} has no price in 'prices'"
    cache = policy.cache
    embeds = cache.enabled and cache.semantic and cache.embedder == "provider"
    if embeds and cache.embedding_model not in priced:
        yield (
            f"cache.embedding_model: {cache.embedding_model!r} has no price in 'prices' "
            "(its calls are charged to the step that makes them)"
        )
    for tier in ("cheap", "strong"):
        fallback = simulated_model(tier)
        if fallback not in priced and fallback not in reported:
            yield (
                f"prices: {fallback!r} needs a price; it stands in for the {tier} tier "
                "when no provider has credentials"
            )


def _step_problems(
    where: str, merged: StepConfidencePolicy, own: StepConfidencePolicy
) -> Iterator[str]:
    if not any(weight > 0 for weight in merged.weights.model_dump().values()):
        yield f"{where}.weights: at least one weight must be positive"
    if own is not merged and "rules" not in own.model_fields_set:
        return  # inherited rules were checked where they are written
    yield from _rule_problems(f"{where}.rules", own.rules)


def _rule_problems(where: str, rules: list[RuleCheck]) -> Iterator[str]:
    names: set[str] = set()
    for index, rule in enumerate(rules):
        at = f"{where}[{index}]"
        if rule.name in names:
            yield f"{at}.name: duplicate rule name {rule.name!r}"
        names.add(rule.name)
        if rule.pattern is not None:
            try:
                re.compile(rule.pattern)
            except re.error as exc:
                yield f"{at}.pattern: invalid regular expression: {exc}"
        if (
            rule.min_length is not None
            and rule.max_length is not None
            and (rule.min_length > rule.max_length)
        ):
            yield f"{at}: min_length is greater than max_length"


def _review_problems(where: str, review: ReviewPolicy) -> Iterator[str]:
    timeouts = review.timeouts
    steps = [
        ("remind_after", timeouts.remind_after),
        ("escalate_after", timeouts.escalate_after),
        ("default_after", timeouts.default_after),
    ]
    present = [(name, after) for name, after in steps if after is not None]
    for (first, first_after), (then, then_after) in itertools.pairwise(present):
        if first_after >= then_after:
            yield (
                f"{where}.timeouts: {first} ({format_duration(first_after)}) must come before "
                f"{then} ({format_duration(then_after)})"
            )
    if timeouts.default_after is not None and review.expires_after < timeouts.default_after:
        yield (
            f"{where}.expires_after: a review must not expire "
            f"({format_duration(review.expires_after)}) before its timeout default "
            f"(timeouts.default_after {format_duration(timeouts.default_after)})"
        )


def _reviewer_problems(policy: TetherPolicy) -> Iterator[str]:
    names: set[str] = set()
    slack_ids: set[str] = set()
    for index, reviewer in enumerate(policy.reviewers):
        name = reviewer.name.casefold()
        if name in names:
            yield f"reviewers[{index}].name: duplicate reviewer {reviewer.name!r}"
        names.add(name)
        if reviewer.slack_user_id is not None:
            if reviewer.slack_user_id in slack_ids:
                yield f"reviewers[{index}].slack_user_id: {reviewer.slack_user_id!r} is used twice"
            slack_ids.add(reviewer.slack_user_id)
