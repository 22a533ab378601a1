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
    """Of labelled outputs scoring at least ``threshold``: how many, how many were right, and
    the precision with each output weighted by how many outputs it stands for."""

    threshold: float
    accepted: int
    correct: int
    precision: float | None


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
    weights: Sequence[float] | None = None,
) -> Calibration:
    """The precision auto-accept would have at each threshold, from ``(score, was_right)`` pairs.

    An output counts as accepted at threshold ``t`` when its score is >= ``t`` (the gate's
    rule); it was right when a human approved it unchanged (from a review or an audit).
    ``weights`` (default 1 each) say how many outputs each labelled one stands for: every
    output the gate sent to review is labelled, but only a sampled share of auto-accepted ones
    is audited, so an audit stands for 1 / rate outputs. Without that, thresholds below the
    gate's would mix a complete set of reviews with a thin sample of accepted outputs, and
    their precision would be biased towards the reviewed (worse) outputs.
    """
    weights = [1.0] * len(labelled) if weights is None else list(weights)
    if len(weights) != len(labelled):
        raise ValueError("one weight per labelled output")
    rows = []
    for t in threshold_grid() if thresholds is None else sorted(thresholds):
        above = [
            (right, w) for (score, right), w in zip(labelled, weights, strict=True) if score >= t
        ]
        total = sum(w for _, w in above)
        rows.append(
            ThresholdPrecision(
                threshold=t,
                accepted=len(above),
                correct=sum(1 for right, _ in above if right),
                precision=sum(w for right, w in above if right) / total if total else None,
            )
        )
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
