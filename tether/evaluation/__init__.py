"""Evaluation of a workflow step over a dataset (``tether eval``) and calibration reports."""

from tether.evaluation.evaluate import (
    EvalRequest,
    calibration_for,
    calibration_table,
    evaluate,
)
from tether.evaluation.report import EvalReport, terminal_table

__all__ = [
    "EvalReport",
    "EvalRequest",
    "calibration_for",
    "calibration_table",
    "evaluate",
    "terminal_table",
]
