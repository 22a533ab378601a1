"""Rule checks on step outputs, as written in the policy file."""

from __future__ import annotations

import pytest

from policies.models import RuleCheck
from policies.rules import check_rules

OUTPUT = {
    "category": "billing",
    "reply": "Thanks for reaching out, I have refunded the duplicate charge today.",
    "tags": ["refund", "card"],
    "meta": {"lang": "en", "score": 3, "note": None},
}


@pytest.mark.parametrize(
    ("rule", "passed"),
    [
        (RuleCheck(name="r", field="category", one_of=["billing", "technical"]), True),
        (RuleCheck(name="r", field="category", one_of=["Billing"]), False),
        (RuleCheck(name="r", field="reply", min_length=40), True),
        (RuleCheck(name="r", field="reply", min_length=400), False),
        (RuleCheck(name="r", field="reply", max_length=20), False),
        (RuleCheck(name="r", field="reply", not_contains=["as an AI"]), True),
        (RuleCheck(name="r", field="reply", not_contains=["REFUNDED"]), False),
        (RuleCheck(name="r", field="reply", pattern=r"^Thanks"), True),
        (RuleCheck(name="r", field="reply", pattern=r"^Sorry"), False),
        (RuleCheck(name="r", field="meta.lang", one_of=["en", "de"]), True),
        (RuleCheck(name="r", field="tags", one_of=["refund", "card"]), True),
        (RuleCheck(name="r", field="tags", one_of=["refund"]), False),
        (RuleCheck(name="r", field="tags.0", pattern="^ref"), True),
        (RuleCheck(name="r", field="tags", max_length=2), True),
        (RuleCheck(name="r", field="meta.missing", min_length=1), False),
        (RuleCheck(name="r", field="meta.note"), False),
        (RuleCheck(name="r", field="nope.deeper"), False),
        (RuleCheck(name="r", field="meta.score"), True),
        (RuleCheck(name="r", field="meta.score", min_length=1), False),
        (RuleCheck(name="r", field="meta.score", pattern="3"), False),
    ],
)
def test_rule(rule: RuleCheck, passed: bool) -> None:
    assert check_rules([rule], OUTPUT) == {"r": passed}


def test_whitespace_does_not_satisfy_a_minimum_length() -> None:
    rule = RuleCheck(name="r", field="reply", min_length=10)
    assert check_rules([rule], {"reply": " " * 50 + "ok"}) == {"r": False}


def test_every_rule_is_reported_by_name() -> None:
    rules = [
        RuleCheck(name="reply_min_length", field="reply", min_length=40),
        RuleCheck(name="reply_no_ai_disclaimer", field="reply", not_contains=["as an AI"]),
    ]
    output = {"reply": "As an AI language model, I cannot do that."}
    assert check_rules(rules, output) == {
        "reply_min_length": True,
        "reply_no_ai_disclaimer": False,
    }
