"""Evaluation and calibration settings (``eval:`` in the policy file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_RUBRIC = (
    "The answer is correct, complete and follows the requested format; it invents nothing "
    "that is not in the input."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepEvalPolicy(_Strict):
    """Per-step overrides of the evaluation settings; unset fields inherit ``eval``'s."""

    rubric: str | None = None
    audit_sample_rate: float | None = Field(default=None, ge=0, le=1)
    target_precision: float | None = Field(default=None, gt=0, le=1)


class EvalPolicy(_Strict):
    """How ``tether eval`` judges outputs and how auto-accepted outputs are audited.

    ``audit_sample_rate`` is the share of auto-accepted outputs of each step copied into the
    review queue as audits (the run does not wait for them); audits and ordinary reviews give
    ``tether calibrate`` the precision of auto-accept at each confidence threshold.
    """

    judge_model: str | None = Field(
        default=None, description="provider/model of the judge (default: the strong tier)."
    )
    rubric: str = DEFAULT_RUBRIC
    audit_sample_rate: float = Field(default=0.05, ge=0, le=1)
    target_precision: float = Field(default=0.95, gt=0, le=1)
    workflows: dict[str, dict[str, StepEvalPolicy]] = Field(
        default_factory=dict, description="workflow -> step -> overrides."
    )

    def for_step(self, workflow: str, step: str) -> ResolvedStepEval:
        """The settings of one step, its overrides applied."""
        own = self.workflows.get(workflow, {}).get(step, StepEvalPolicy())
        return ResolvedStepEval(
            rubric=own.rubric or self.rubric,
            audit_sample_rate=(
                self.audit_sample_rate if own.audit_sample_rate is None else own.audit_sample_rate
            ),
            target_precision=own.target_precision or self.target_precision,
            judge_model=self.judge_model,
        )


class ResolvedStepEval(_Strict):
    rubric: str
    audit_sample_rate: float
    target_precision: float
    judge_model: str | None
