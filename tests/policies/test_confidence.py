"""Confidence: weighted, renormalised scores; invalid output never accepted; readable reasons."""

from __future__ import annotations

import math

import pytest

from policies.confidence import agreement, gate_outcome, judge_is_decisive, score_confidence
from policies.models import ConfidenceWeights, GateThresholds, StepConfidencePolicy
from policies.values import ConfidenceSignals

EQUAL = ConfidenceWeights(schema_validity=1, logprobs=1, self_consistency=1, judge=1, rules=1)
THRESHOLDS = GateThresholds(accept=0.75, review=0.45, escalate=0.2)


def policy(weights: ConfidenceWeights = EQUAL, **kwargs: object) -> StepConfidencePolicy:
    return StepConfidencePolicy.model_validate(
        {"weights": weights, "thresholds": THRESHOLDS, **kwargs}
    )


def test_all_signals_make_the_weighted_mean() -> None:
    weights = ConfidenceWeights(
        schema_validity=0.3, logprobs=0.3, self_consistency=0.2, judge=0.2, rules=0.2
    )
    signals = ConfidenceSignals(
        schema_valid=True,
        repairs=1,
        max_repairs=2,  # schema 1 - 1/3 = 0.6667
        mean_logprob=math.log(0.5),  # 0.5
        self_consistency=1.0,
        judge_score=0.8,
        rule_results={"a": True, "b": False},  # 0.5
    )
    report = score_confidence(signals, policy(weights))
    expected = (0.3 * (2 / 3) + 0.3 * 0.5 + 0.2 * 1.0 + 0.2 * 0.8 + 0.2 * 0.5) / 1.2
    assert report.score == pytest.approx(round(expected, 4))
    assert [c.name for c in report.components] == [
        "schema_validity",
        "logprobs",
        "self_consistency",
        "judge",
        "rules",
    ]
    assert report.components[1].value == pytest.approx(0.5)
    assert report.outcome == "review"  # 0.6389


def test_missing_signals_are_left_out_and_weights_renormalised() -> None:
    weights = ConfidenceWeights(
        schema_validity=0.3, logprobs=0.3, self_consistency=0.2, judge=0.2, rules=0.2
    )
    # Only schema (1.0, weight 0.3) and judge (0.4, weight 0.2) are present.
    signals = ConfidenceSignals(schema_valid=True, judge_score=0.4)
    report = score_confidence(signals, policy(weights))
    assert report.score == pytest.approx((0.3 * 1.0 + 0.2 * 0.4) / 0.5)  # 0.76
    assert report.outcome == "accept"
    assert {c.name for c in report.components} == {"schema_validity", "judge"}


def test_a_zero_weight_component_is_shown_but_not_counted() -> None:
    weights = ConfidenceWeights(schema_validity=1, logprobs=0, self_consistency=0, judge=1, rules=0)
    signals = ConfidenceSignals(schema_valid=True, judge_score=0.6, mean_logprob=-5.0)
    report = score_confidence(signals, policy(weights))
    assert report.score == pytest.approx(0.8)  # (1.0 + 0.6) / 2; logprobs ignored
    logprobs = next(c for c in report.components if c.name == "logprobs")
    assert logprobs.weight == 0
    assert "logprobs low (0.01) (weight 0, not counted)" in report.reasons


@pytest.mark.parametrize(
    ("repairs", "max_repairs", "expected"),
    [(0, 2, 1.0), (1, 2, 2 / 3), (2, 2, 1 / 3), (1, 0, 0.0), (1, 4, 0.8)],
)
def test_schema_validity_drops_with_each_repair(
    repairs: int, max_repairs: int, expected: float
) -> None:
    signals = ConfidenceSignals(schema_valid=True, repairs=repairs, max_repairs=max_repairs)
    report = score_confidence(signals, policy())
    assert report.components[0].value == pytest.approx(expected)
    assert report.score == pytest.approx(round(expected, 4))


def test_invalid_schema_never_accepts_even_with_perfect_other_signals() -> None:
    weights = ConfidenceWeights(
        schema_validity=0.01, logprobs=1, self_consistency=1, judge=1, rules=1
    )
    signals = ConfidenceSignals(
        schema_valid=False,
        repairs=2,
        mean_logprob=0.0,
        self_consistency=1.0,
        judge_score=1.0,
        rule_results={"r": True},
    )
    report = score_confidence(signals, policy(weights))
    assert report.components[0].value == 0.0
    assert report.score == pytest.approx(THRESHOLDS.review)  # capped
    assert report.outcome == "review"
    assert "output does not match the schema, so it cannot be accepted automatically" in (
        report.reasons
    )


def test_invalid_schema_is_not_accepted_when_accept_equals_review() -> None:
    thresholds = GateThresholds(accept=0.6, review=0.6, escalate=0.2)
    step = StepConfidencePolicy(weights=EQUAL, thresholds=thresholds)
    signals = ConfidenceSignals(
        schema_valid=False,
        judge_score=1.0,
        self_consistency=1.0,
        mean_logprob=0.0,
        rule_results={"r": True},
    )
    assert score_confidence(signals, step).outcome == "review"


@pytest.mark.parametrize(
    ("score", "outcome"),
    [
        (1.0, "accept"),
        (0.75, "accept"),
        (0.7499, "review"),
        (0.45, "review"),
        (0.4499, "escalate"),
        (0.2, "escalate"),
        (0.1999, "block"),
        (0.0, "block"),
    ],
)
def test_outcome_boundaries_are_inclusive(score: float, outcome: str) -> None:
    assert gate_outcome(score, THRESHOLDS) == outcome
    # The same boundary reached through a judge-only score.
    only_judge = ConfidenceWeights(
        schema_validity=0, logprobs=0, self_consistency=0, judge=1, rules=0
    )
    report = score_confidence(
        ConfidenceSignals(schema_valid=True, judge_score=score), policy(only_judge)
    )
    assert (report.score, report.outcome) == (pytest.approx(score), outcome)


def test_rounding_lets_a_sum_that_lands_on_a_threshold_meet_it() -> None:
    # 0.7 * 0.5 + 0.8 * 0.5 is 0.75 in decimal but 0.7499999... in binary floating point.
    halves = ConfidenceWeights(
        schema_validity=0, logprobs=0, self_consistency=0.5, judge=0.5, rules=0
    )
    signals = ConfidenceSignals(schema_valid=True, self_consistency=0.7, judge_score=0.8)
    report = score_confidence(signals, policy(halves))
    assert report.score == 0.75
    assert report.outcome == "accept"


def test_reasons_tell_a_reviewer_what_went_wrong() -> None:
    signals = ConfidenceSignals(
        schema_valid=True,
        repairs=1,
        mean_logprob=math.log(0.41),
        self_consistency=1 / 3,
        judge_score=0.3,
        rule_results={"reply_min_length": False, "reply_no_ai_disclaimer": True},
    )
    report = score_confidence(signals, policy())
    assert report.outcome != "accept"
    assert report.reasons[0].startswith("score ")
    assert "below the accept threshold 0.75" in report.reasons[0]
    for line in [
        "1 repair needed",
        "logprobs low (0.41)",
        "samples disagree (agreement 0.33)",
        "judge score low (0.30)",
        "rule reply_min_length failed",
    ]:
        assert line in report.reasons
    assert not any("reply_no_ai_disclaimer" in line for line in report.reasons)


def test_an_accepted_output_with_good_signals_has_no_complaints() -> None:
    signals = ConfidenceSignals(
        schema_valid=True, mean_logprob=-0.05, judge_score=0.9, rule_results={"r": True}
    )
    report = score_confidence(signals, policy())
    assert report.outcome == "accept"
    assert report.reasons == []


def test_all_weights_zero_falls_back_to_an_unweighted_mean() -> None:
    zero = ConfidenceWeights(schema_validity=0, logprobs=0, self_consistency=0, judge=0, rules=0)
    signals = ConfidenceSignals(schema_valid=True, judge_score=0.5)
    assert score_confidence(signals, policy(zero)).score == pytest.approx(0.75)


def test_out_of_range_and_nan_signals_are_clamped_or_ignored() -> None:
    signals = ConfidenceSignals(
        schema_valid=True, mean_logprob=float("nan"), judge_score=1.7, self_consistency=-0.2
    )
    report = score_confidence(signals, policy())
    values = {c.name: c.value for c in report.components}
    assert values == {"schema_validity": 1.0, "judge": 1.0, "self_consistency": 0.0}


@pytest.mark.parametrize(
    ("main", "samples", "expected"),
    [
        ({"category": "billing"}, [{"category": " Billing "}, {"category": "BILLING"}], 1.0),
        ({"category": "billing"}, [{"category": "billing"}, {"category": "technical"}], 0.5),
        ({"tags": ["A", "b"]}, [{"tags": ["a", "B "]}, {"tags": ["b", "a"]}, {}], 1 / 3),
        ({"n": 1, "ok": True}, [{"n": 1, "ok": True}, {"n": 2, "ok": True}], 0.5),
        ({"text": "two  words"}, [{"text": "Two words"}], 1.0),
    ],
)
def test_agreement_counts_samples_equal_after_normalising(
    main: dict[str, object], samples: list[dict[str, object]], expected: float
) -> None:
    assert agreement(main, samples) == pytest.approx(expected)


def test_agreement_needs_samples() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        agreement({"a": 1}, [])


SHIPPED = ConfidenceWeights(
    schema_validity=0.3, logprobs=0.3, self_consistency=0.2, judge=0.2, rules=0.2
)


def test_the_judge_is_not_decisive_when_the_other_signals_settle_the_outcome() -> None:
    sure = ConfidenceSignals(
        schema_valid=True,
        mean_logprob=-0.03,
        self_consistency=1.0,
        rule_results={"a": True, "b": True},
    )
    # Without the judge 0.83 .. with a perfect judge 0.99: accepted whatever it says.
    assert not judge_is_decisive(sure, policy(SHIPPED))
    # Without samples or rules the other signals reach only 0.74 with a judge scoring 0: the
    # judge decides between review and accept.
    bare = ConfidenceSignals(schema_valid=True, mean_logprob=-0.03)
    assert judge_is_decisive(bare, policy(SHIPPED))
    unsure = sure.model_copy(update={"mean_logprob": -0.9})
    assert judge_is_decisive(unsure, policy(SHIPPED))
    # An invalid output is never judged; a judge of weight 0 never counts.
    assert not judge_is_decisive(ConfidenceSignals(schema_valid=False), policy(SHIPPED))
    unweighted = SHIPPED.model_copy(update={"judge": 0.0})
    assert not judge_is_decisive(bare, policy(unweighted))


@pytest.mark.parametrize("weights", [SHIPPED, EQUAL])
def test_leaving_out_a_judge_that_is_not_decisive_never_changes_the_outcome(
    weights: ConfidenceWeights,
) -> None:
    # Every combination of the other signals on a grid: wherever the judge is not decisive, the
    # outcome without it is the outcome at every judge score; wherever it is, two judge scores
    # lead to different outcomes.
    checked = decisive = 0
    for repairs in (0, 1, 2):
        for logprob in (None, -0.01, -0.1, -0.3, -0.6, -1.0, -2.0):
            for consistency in (None, 0.0, 0.5, 1.0):
                for rules in ({}, {"a": True}, {"a": False}, {"a": True, "b": False}):
                    signals = ConfidenceSignals(
                        schema_valid=True,
                        repairs=repairs,
                        max_repairs=2,
                        mean_logprob=logprob,
                        self_consistency=consistency,
                        rule_results=rules,
                    )
                    step = policy(weights)
                    judged = {
                        score_confidence(
                            signals.model_copy(update={"judge_score": j / 20}), step
                        ).outcome
                        for j in range(21)
                    }
                    if judge_is_decisive(signals, step):
                        decisive += 1
                        assert len(judged) > 1
                    else:
                        assert judged == {score_confidence(signals, step).outcome}
                    checked += 1
    assert checked == 336 and 0 < decisive < checked
