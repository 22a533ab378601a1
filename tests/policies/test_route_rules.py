"""Routing rules: the first matching rule chooses an ``auto`` step's tier and says why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.guard_routing import RouteRule, RouteRulesPolicy, RouteWhen
from policies.route_features import RouteFeatures, RouteRequest, input_features
from policies.route_rules import LearnedVerdict, choose_tier, route_tier

# --- rules -------------------------------------------------------------------------------------


def features(**changes: object) -> RouteFeatures:
    base: dict[str, object] = {
        "chars": 400,
        "tokens": 100,
        "language": "en",
        "has_code": False,
        "questions": 1,
        "links": 0,
        "attachments": 0,
    }
    return RouteFeatures.model_validate(base | changes)


def request(
    tenant: str | None = "globex", step: str = "classify", **changes: object
) -> RouteRequest:
    return RouteRequest(
        features=features(**changes), tenant=tenant, workflow="support_triage", step=step
    )


RULES = RouteRulesPolicy.model_validate(
    {
        "rules": [
            {"when": {"min_tokens": 2000}, "tier": "strong"},
            {"when": {"has_code": True}, "tier": "strong"},
            {"when": {"language_not": ["en"]}, "tier": "strong", "name": "foreign"},
            {"when": {"tenant": ["acme"]}, "tier": "strong"},
            {"when": {"min_questions": 3}, "tier": "strong"},
            {"when": {"min_attachments": 1, "step": ["draft_reply"]}, "tier": "strong"},
            {"when": {"min_links": 2, "max_tokens": 500}, "tier": "cheap"},
            {"when": {"language": ["EN"], "workflow": ["support_triage"]}, "tier": "cheap"},
        ],
        "default_tier": "strong",
    }
)


@pytest.mark.parametrize(
    ("req", "tier", "reason"),
    [
        (request(tokens=2000), "strong", "rule 1: tokens 2000 ≥ 2000 → strong"),
        (request(tokens=2000, has_code=True), "strong", "rule 1: tokens 2000 ≥ 2000 → strong"),
        (request(has_code=True), "strong", "rule 2: has_code → strong"),
        (request(language="de"), "strong", "rule 3 (foreign): language de not in [en] → strong"),
        (request(tenant="acme"), "strong", "rule 4: tenant acme → strong"),
        (request(questions=3), "strong", "rule 5: questions 3 ≥ 3 → strong"),
        (
            request(attachments=1, step="draft_reply"),
            "strong",
            "rule 6: attachments 1 ≥ 1, step draft_reply → strong",
        ),
        (
            request(links=2, tokens=500),
            "cheap",
            "rule 7: tokens 500 ≤ 500, links 2 ≥ 2 → cheap",
        ),
        (
            request(),
            "cheap",
            "rule 8: language en in [en], workflow support_triage → cheap",
        ),
        (request(language="und"), "strong", "default: no rule matched → strong"),
    ],
)
def test_the_first_matching_rule_wins_and_says_why(
    req: RouteRequest, tier: str, reason: str
) -> None:
    decision = choose_tier(RULES, req)
    assert (decision.tier, decision.reason) == (tier, reason)


def test_a_rule_needs_all_its_conditions() -> None:
    assert choose_tier(RULES, request(attachments=1, step="classify")).rule == 8
    assert choose_tier(RULES, request(links=2, tokens=501)).rule == 8
    assert choose_tier(RULES, request(tenant=None)).rule == 8


def test_no_rules_gives_the_default_tier() -> None:
    decision = choose_tier(RouteRulesPolicy(), request(tokens=10**6))
    assert (decision.tier, decision.rule) == ("cheap", None)


def test_explicit_tiers_bypass_the_rules() -> None:
    assert route_tier(RULES, "cheap", request(has_code=True)).reason == "step asks for cheap"
    assert route_tier(RULES, "auto", request(has_code=True)).rule == 2


def test_a_rule_without_conditions_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at least one condition"):
        RouteRule.model_validate({"when": {}, "tier": "strong"})
    with pytest.raises(ValidationError):
        RouteWhen.model_validate({"min_tokns": 3})


# --- the learned rule ---------------------------------------------------------------------------

LEARNED_RULES = RouteRulesPolicy.model_validate(
    {
        "rules": [
            {"when": {"tenant": ["acme"]}, "tier": "cheap"},
            {"when": {"learned": True}, "tier": "strong", "name": "reviewers"},
        ]
    }
)


class Neighbours:
    """A fake learned rule: counts how often it is asked."""

    def __init__(self, verdict: LearnedVerdict | None) -> None:
        self.verdict = verdict
        self.asked: list[RouteRequest] = []

    def __call__(self, request: RouteRequest) -> LearnedVerdict | None:
        self.asked.append(request)
        return self.verdict


def test_inputs_like_rejected_ones_go_strong() -> None:
    learned = Neighbours(
        LearnedVerdict(troubled=True, reason="4 of 5 nearest past inputs rejected or edited")
    )
    decision = choose_tier(LEARNED_RULES, request(), learned)
    assert decision.tier == "strong"
    assert decision.reason == (
        "rule 2 (reviewers): learned: 4 of 5 nearest past inputs rejected or edited → strong"
    )
    assert learned.asked == [request()]


def test_the_learned_rule_is_asked_only_when_a_rule_needs_it() -> None:
    learned = Neighbours(LearnedVerdict(troubled=True, reason="r"))
    assert choose_tier(LEARNED_RULES, request(tenant="acme"), learned).tier == "cheap"
    assert learned.asked == []


@pytest.mark.parametrize(
    "verdict", [None, LearnedVerdict(troubled=False, reason="1 of 5 rejected or edited")]
)
def test_no_learned_signal_falls_through(verdict: LearnedVerdict | None) -> None:
    assert choose_tier(LEARNED_RULES, request(), Neighbours(verdict)).rule is None
    assert choose_tier(LEARNED_RULES, request()).rule is None  # no learned rule at all


def test_a_learned_false_condition_and_a_failing_learned_rule() -> None:
    rules = RouteRulesPolicy.model_validate(
        {"rules": [{"when": {"learned": False, "has_code": True}, "tier": "strong"}]}
    )

    def broken(_: RouteRequest) -> LearnedVerdict | None:
        raise RuntimeError("store down")

    decision = choose_tier(rules, request(has_code=True), broken)
    assert decision.reason == "rule 1: has_code, learned: no signal → strong"
    calm = Neighbours(LearnedVerdict(troubled=False, reason="0 of 5 rejected"))
    assert choose_tier(rules, request(has_code=True), calm).reason == (
        "rule 1: has_code, learned: 0 of 5 rejected → strong"
    )
    troubled = Neighbours(LearnedVerdict(troubled=True, reason="5 of 5 rejected"))
    assert choose_tier(rules, request(has_code=True), troubled).rule is None


def test_features_end_to_end() -> None:
    text = "Mein Skript wirft einen Fehler:\n```\nraise ValueError()\n```\nWarum? Was tun?"
    decision = choose_tier(RULES, RouteRequest(features=input_features(text), tenant="globex"))
    assert decision.reason == "rule 2: has_code → strong"
