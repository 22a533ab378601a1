"""The policy that applies to one workflow and step: its overrides laid over the defaults."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies.guard_settings import InjectionGuardSettings, PiiGuardSettings
from policies.limits import LimitsPolicy
from policies.models import (
    BudgetPolicy,
    InputGuardPolicy,
    Reviewer,
    ReviewPolicy,
    StepConfidencePolicy,
    TetherPolicy,
)
from tether.core.errors import ConfigurationError

__all__ = [
    "EffectivePolicy",
    "effective_for",
    "injection_settings",
    "overlay",
    "pii_settings",
    "reviewer_by_name",
    "reviewer_by_slack_id",
    "step_confidence",
]

_M = TypeVar("_M", bound=BaseModel)


class EffectivePolicy(BaseModel):
    """Everything that applies to one workflow, with defaults filled in."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    budgets: BudgetPolicy
    review: ReviewPolicy
    input_guard: InputGuardPolicy
    limits: LimitsPolicy
    """Per user and tenant windows; provider caps always come from the top level."""
    confidence: StepConfidencePolicy
    """For steps the workflow does not list."""
    steps: dict[str, StepConfidencePolicy] = Field(default_factory=dict)

    def step(self, name: str) -> StepConfidencePolicy:
        """The confidence policy of step ``name``."""
        return self.steps.get(name, self.confidence)


def effective_for(policy: TetherPolicy, workflow: str) -> EffectivePolicy:
    """Returns the policy of ``workflow``: its section laid over the top-level defaults.

    Only fields the workflow's section sets override, field by field and recursively, so a
    workflow that sets ``budgets.per_run_usd`` keeps the top-level daily and monthly limits.
    A workflow without a section gets the defaults.

    Raises:
        ConfigurationError: The merged policy is invalid (e.g. thresholds out of order).
    """
    section = policy.workflows.get(workflow)
    if section is None:
        return EffectivePolicy(
            workflow=workflow,
            budgets=policy.budgets,
            review=policy.review,
            input_guard=policy.input_guard,
            limits=policy.limits,
            confidence=policy.confidence,
        )
    where = f"workflows.{workflow}"
    return EffectivePolicy(
        workflow=workflow,
        budgets=_overlay_or_default(policy.budgets, section.budgets, f"{where}.budgets"),
        review=_overlay_or_default(policy.review, section.review, f"{where}.review"),
        input_guard=_overlay_or_default(
            policy.input_guard, section.input_guard, f"{where}.input_guard"
        ),
        limits=_overlay_or_default(policy.limits, section.limits, f"{where}.limits"),
        confidence=policy.confidence,
        steps={
            name: overlay(policy.confidence, step, where=f"{where}.steps.{name}")
            for name, step in section.steps.items()
        },
    )


def injection_settings(policy: TetherPolicy, workflow: str) -> InjectionGuardSettings:
    """The prompt-injection guard of ``workflow``: its override laid over the top-level one.

    Raises:
        ConfigurationError: The merged settings are invalid.
    """
    section = policy.workflows.get(workflow)
    if section is None or section.injection is None:
        return policy.injection
    return overlay(policy.injection, section.injection, where=f"workflows.{workflow}.injection")


def step_confidence(policy: TetherPolicy, workflow: str, step: str) -> StepConfidencePolicy:
    """The confidence policy of ``step`` in ``workflow``: its override, else the defaults.

    Raises:
        ConfigurationError: The merged policy is invalid.
    """
    section = policy.workflows.get(workflow)
    override = section.steps.get(step) if section is not None else None
    if override is None:
        return policy.confidence
    return overlay(policy.confidence, override, where=f"workflows.{workflow}.steps.{step}")


def overlay(base: _M, override: _M, *, where: str = "") -> _M:
    """Returns ``base`` with the fields ``override`` explicitly sets, recursively.

    Lists and dicts are replaced whole (a step's rules replace the default rules); nested
    models merge field by field. The result is validated again, because each side can be
    valid alone and invalid together (``accept`` from one, ``review`` from the other).

    Raises:
        ConfigurationError: The merge is invalid; ``where`` names the overriding section.
    """
    try:
        return type(base).model_validate(_merged_fields(base, override))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(section)'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise ConfigurationError(
            f"{where or type(base).__name__}: invalid with the defaults it overrides: {problems}"
        ) from None


def reviewer_by_name(policy: TetherPolicy, name: str) -> Reviewer | None:
    """The embedded-login reviewer called ``name`` (case-insensitive), if any."""
    wanted = name.strip().casefold()
    return next((r for r in policy.reviewers if r.name.casefold() == wanted), None)


def reviewer_by_slack_id(policy: TetherPolicy, slack_user_id: str) -> Reviewer | None:
    """The reviewer whose Slack user id is ``slack_user_id``, if any."""
    return next((r for r in policy.reviewers if r.slack_user_id == slack_user_id), None)


def pii_settings(policy: TetherPolicy, workflow: str) -> PiiGuardSettings:
    """The PII guard of ``workflow``: its ``pii`` section laid over the top-level one.

    Raises:
        ConfigurationError: The merged settings are invalid.
    """
    section = policy.workflows.get(workflow)
    override = section.pii if section is not None else None
    return _overlay_or_default(policy.pii, override, f"workflows.{workflow}.pii")


def _overlay_or_default(base: _M, override: _M | None, where: str) -> _M:
    return base if override is None else overlay(base, override, where=where)


def _merged_fields(base: BaseModel, override: BaseModel) -> dict[str, object]:
    merged = {name: getattr(base, name) for name in type(base).model_fields}
    for name in override.model_fields_set:
        value = getattr(override, name)
        current = merged.get(name)
        if isinstance(value, BaseModel) and isinstance(current, BaseModel):
            # Left as data so one validation at the top reports the full path of a problem.
            merged[name] = _merged_fields(current, value)
        else:
            merged[name] = value
    return merged
