"""``/api/calibration``: the precision of auto-accept per confidence threshold for one step."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from policies.models import ALL_TENANTS
from review_ui.deps import ApiReviewer, Desk, SessionDep, read_apart
from review_ui.errors import error_responses
from tether.store.examples import calibration_report

router = APIRouter(
    prefix="/api/calibration", tags=["calibration"], responses=error_responses(401, 422)
)


class ThresholdRow(BaseModel):
    threshold: float
    accepted: int
    correct: int
    precision: float | None


class CalibrationView(BaseModel):
    workflow: str
    step: str
    labelled: int
    """Reviewed and audited outputs with a confidence score."""
    target_precision: float
    suggested_threshold: float | None
    thresholds: list[ThresholdRow]


@router.get("", response_model=CalibrationView)
async def calibration(
    desk: Desk,
    session: SessionDep,
    reviewer: ApiReviewer,
    workflow: str = Query(max_length=100),
    step: str = Query(max_length=100),
    target: float | None = Query(default=None, gt=0, le=1),
    min_support: int = Query(default=5, ge=1),
) -> CalibrationView:
    """Of the step's labelled outputs (reviews and audits) of the caller's tenants: how many
    each threshold would accept automatically, how many of those a human approved, the
    precision (an audit weighted as the 1 / rate accepted outputs it was sampled from), and the
    lowest threshold that reaches the target precision (the policy's, unless given)."""
    of_step = desk.policy.eval.for_step(workflow, step)
    tenants = None if ALL_TENANTS in reviewer.tenants else list(reviewer.tenants)
    report = await read_apart(
        session,
        calibration_report,
        workflow,
        step,
        target_precision=target or of_step.target_precision,
        min_support=min_support,
        tenants=tenants,
        audit_sample_rate=of_step.audit_sample_rate,
    )
    return CalibrationView(
        workflow=workflow,
        step=step,
        labelled=report.labelled,
        target_precision=report.target_precision,
        suggested_threshold=report.suggested_threshold,
        thresholds=[
            ThresholdRow(
                threshold=r.threshold, accepted=r.accepted, correct=r.correct, precision=r.precision
            )
            for r in report.thresholds
        ],
    )
