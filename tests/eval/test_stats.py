"""Kappa, the paired interval and calibration on constructed cases whose answers are worked out
by hand in the comments."""

from __future__ import annotations

import pytest

from policies.eval_stats import calibrate, cohen_kappa, paired_bootstrap


def test_kappa_of_a_constructed_table() -> None:
    # 10 items. Judge / human: both yes 4, judge yes human no 1, judge no human yes 2, both no 3.
    # po = 7/10; judge yes 5/10, human yes 6/10: pe = .5*.6 + .5*.4 = .5; kappa = .2/.5 = 0.4.
    judge = [1] * 4 + [1] + [0] * 2 + [0] * 3
    human = [1] * 4 + [0] + [1] * 2 + [0] * 3
    assert cohen_kappa(judge, human) == pytest.approx(0.4)


def test_kappa_is_one_for_agreement_and_negative_for_systematic_disagreement() -> None:
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    # Always opposite, half and half: po = 0, pe = .5 -> kappa = -1.
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)


def test_kappa_is_undefined_when_both_raters_say_the_same_thing_for_everything() -> None:
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) is None
    assert cohen_kappa([], []) is None


def test_paired_interval_of_a_constant_difference_is_that_difference() -> None:
    # Every example gains exactly 0.25: every resample's mean difference is 0.25.
    diff = paired_bootstrap([0.5, 0.25, 0.0, 0.75], [0.75, 0.5, 0.25, 1.0])
    assert (diff.mean, diff.low, diff.high) == pytest.approx((0.25, 0.25, 0.25))


def test_paired_interval_of_two_examples_spans_the_resampled_means() -> None:
    # Differences 0 and 1: a resample of two draws has mean 0 (p=1/4), 0.5 (1/2) or 1 (1/4),
    # so the 2.5th percentile is 0 and the 97.5th is 1; the observed mean is 0.5.
    diff = paired_bootstrap([1.0, 0.0], [1.0, 1.0])
    assert (diff.mean, diff.low, diff.high) == pytest.approx((0.5, 0.0, 1.0))


def test_paired_interval_excludes_zero_for_a_clear_win_and_is_reproducible() -> None:
    baseline = [0.0] * 30 + [1.0] * 10
    variant = [1.0] * 30 + [1.0] * 10
    first = paired_bootstrap(baseline, variant)
    assert first.mean == pytest.approx(0.75)
    assert 0.5 < first.low <= 0.75 <= first.high <= 1.0
    assert paired_bootstrap(baseline, variant) == first  # fixed seed


def test_calibration_finds_the_lowest_threshold_meeting_the_target() -> None:
    # Scores with labels: 0.95 ok x4, 0.85 ok x3 + wrong x1, 0.65 ok x1 + wrong x3.
    # At 0.9: 4/4 = 1.0. At 0.8: 7/8 = .875. At 0.6: 8/12 = .667.
    labelled = [(0.95, True)] * 4 + [(0.85, True)] * 3 + [(0.85, False)] + [(0.65, True)]
    labelled += [(0.65, False)] * 3
    report = calibrate(labelled, target_precision=0.85, thresholds=[0.6, 0.8, 0.9], min_support=4)
    precisions = {row.threshold: row.precision for row in report.thresholds}
    assert precisions == pytest.approx({0.6: 8 / 12, 0.8: 7 / 8, 0.9: 1.0})
    assert report.suggested_threshold == 0.8
    strict = calibrate(labelled, target_precision=0.95, thresholds=[0.6, 0.8, 0.9], min_support=4)
    assert strict.suggested_threshold == 0.9
    # Too few outputs above 0.9 to trust it: no suggestion rather than a guess.
    unsure = calibrate(labelled, target_precision=0.95, thresholds=[0.6, 0.8, 0.9], min_support=5)
    assert unsure.suggested_threshold is None


def test_an_audit_stands_for_the_accepted_outputs_it_was_sampled_from() -> None:
    # Reviews (every output the gate sent to a human): 0.6 right x3, wrong x2. Audits at a 10 %
    # rate (each stands for 10 outputs): 0.9 right x2. At 0.5: unweighted 5/7 = .714 would
    # understate it; weighted (3 + 20) / (5 + 20) = 0.92. At 0.8: 20/20 = 1.
    labelled = [(0.6, True)] * 3 + [(0.6, False)] * 2 + [(0.9, True)] * 2
    weights = [1.0] * 5 + [10.0] * 2
    report = calibrate(
        labelled, target_precision=0.9, thresholds=[0.5, 0.8], min_support=2, weights=weights
    )
    rows = {row.threshold: row for row in report.thresholds}
    assert (rows[0.5].accepted, rows[0.5].correct) == (7, 5)
    assert rows[0.5].precision == pytest.approx(0.92)
    assert rows[0.8].precision == pytest.approx(1.0)
    assert report.suggested_threshold == 0.5
    unweighted = calibrate(labelled, target_precision=0.9, thresholds=[0.5, 0.8], min_support=2)
    assert unweighted.suggested_threshold == 0.8
