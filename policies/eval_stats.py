"""The statistics of evaluation and calibration: agreement (Cohen's kappa), a confidence
interval on the difference of two variants (paired bootstrap), and the precision of auto-accept
at each confidence threshold. Pure functions over plain numbers."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

BOOTSTRAP_SEED = 20261129
"""Fixed, so the same scores always give the same interval."""


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa between two raters' labels of the same items: (po - pe) / (1 - pe).

    ``po`` is the share of items they label alike, ``pe`` the share expected by chance from
    each rater's own label frequencies. None when undefined: no items, or both raters give one
    and the same label to everything (pe = 1).
    """
    if len(first) != len(second):
        raise ValueError("both raters must label the same items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[label] * counts_b[label] for label in counts_a) / (n * n)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class PairedDifference:
    """Variant minus baseline, averaged over the same examples, with a 95 % interval."""

    mean: float
    low: float
    high: float
    n: int
    resamples: int


def paired_bootstrap(
    baseline: Sequence[float],
    variant: Sequence[float],
    *,
    resamples: int = 2000,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> PairedDifference:
    """A percentile bootstrap interval on mean(variant - baseline), resampling examples.

    Why paired: both variants answer the same examples, so the per-example differences carry
    the comparison and example difficulty cancels out. Why bootstrap: scores are bounded and
    often 0/1, far from normal on small datasets; resampling makes no such assumption. The
    seed is fixed, so a report is reproducible.
    """
    if len(baseline) != len(variant):
        raise ValueError("both variants must be scored on the same examples")
    diffs = [b - a for a, b in zip(baseline, variant, strict=True)]
    n = len(diffs)
    if n == 0:
        raise ValueError("no examples to compare")
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - level) / 2
    low = means[max(0, math.floor(tail * resamples))]
    high = means[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return PairedDifference(sum(diffs) / n, low, high, n, resamples)


@dataclass(frozen=True)
class ThresholdPrecision:
    """Of labelled outputs scoring at least ``threshold``: how many, and how many were right."""

    threshold: float
    accepted: int
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.accepted if self.accepted else None


@dataclass(frozen=True)
class Calibration:
    thresholds: list[ThresholdPrecision]
    labelled: int
    target_precision: float
    suggested_threshold: float | None
    """The lowest threshold whose precision meets the target on at least ``min_support``
    outputs (the most automation for that precision); None when no threshold does."""


def threshold_grid(step: float = 0.05) -> list[float]:
    count = round(1 / step)
    return [round(i * step, 4) for i in range(count + 1)]


def calibrate(
    labelled: Sequence[tuple[float, bool]],
    *,
    target_precision: float,
    thresholds: Sequence[float] | None = None,
    min_support: int = 5,
) -> Calibration:
    """The precision auto-accept would have at each threshold, from ``(score, was_right)`` pairs.

    An output counts as accepted at threshold ``t`` when its score is >= ``t`` (the gate's
    rule); it was right when a human approved it unchanged (from a review or an audit).
    """
    rows = [
        ThresholdPrecision(
            threshold=t,
            accepted=sum(1 for score, _ in labelled if score >= t),
            correct=sum(1 for score, right in labelled if score >= t and right),
        )
        for t in (threshold_grid() if thresholds is None else sorted(thresholds))
    ]
    suggested = next(
        (
            row.threshold
            for row in rows
            if row.accepted >= min_support
            and row.precision is not None
            and row.precision >= target_precision
        ),
        None,
    )
    return Calibration(rows, len(labelled), target_precision, suggested)
