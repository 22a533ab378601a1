"""Loading policy files: the embedded default, short durations, and one clear line per mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from policies.loader import load_policy, load_policy_text, parse_duration
from tether.core.errors import ConfigurationError

PRICES = """\
prices:
  simulated/cheap: {input_per_mtok: 0.15, output_per_mtok: 0.60}
  simulated/strong: {input_per_mtok: 2.50, output_per_mtok: 10.00}
"""


def test_the_embedded_default_loads() -> None:
    policy = load_policy()
    assert set(policy.workflows) == {"support_triage", "document_summary"}
    assert policy.confidence.thresholds.accept == 0.75
    assert policy.confidence.thresholds.review == 0.45
    assert policy.budgets.per_run_usd == 0.50
    assert policy.budgets.on_exceed == "approve_spend"
    assert policy.review.timeouts.remind_after == timedelta(hours=4)
    assert policy.review.timeouts.escalate_after == timedelta(hours=24)
    assert policy.review.timeouts.default_after == timedelta(hours=72)
    assert policy.routing.tiers["cheap"] == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    assert {r.name: r.slack_user_id for r in policy.reviewers} == {
        "alice": "U0ALICE",
        "bob": "U0BOB",
        "carol": "U0CAROL",
    }
    triage = policy.workflows["support_triage"]
    assert triage.review is not None and triage.review.slack_channel == "#support-escalations"
    assert triage.steps["draft_reply"].rules[0].name == "reply_min_length"


def test_a_file_on_disk_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(PRICES + "budgets:\n  per_run_usd: 2\n", encoding="utf-8")
    assert load_policy(path).budgets.per_run_usd == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        ("0.5h", timedelta(minutes=30)),
        ("0s", timedelta(0)),
        ("PT4H", None),  # left to pydantic
        ("4x", None),
    ],
)
def test_short_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


def test_durations_in_every_form_load() -> None:
    policy = load_policy_text(
        PRICES
        + """\
review:
  expires_after: 10d
  timeouts: {remind_after: 30m, escalate_after: PT6H, default_after: 86400}
workflows:
  w:
    review:
      timeouts: {remind_after: 1h30m}
  immediate:
    review:
      timeouts: {remind_after: null, escalate_after: null, default_after: 0s}
"""
    )
    timeouts = policy.review.timeouts
    assert policy.review.expires_after == timedelta(days=10)
    assert (timeouts.remind_after, timeouts.escalate_after, timeouts.default_after) == (
        timedelta(minutes=30),
        timedelta(hours=6),
        timedelta(days=1),
    )
    override = policy.workflows["w"].review
    assert override is not None and override.timeouts.remind_after == timedelta(minutes=90)
    immediate = policy.workflows["immediate"].review
    assert immediate is not None and immediate.timeouts.default_after == timedelta(0)


BAD_POLICIES = [
    (
        "thresholds out of order",
        PRICES + "confidence:\n  thresholds: {accept: 0.3, review: 0.5}\n",
        "policy.yaml: confidence.thresholds: thresholds must satisfy accept >= review >= escalate",
    ),
    (
        "typo in a field name",
        PRICES + "budgets:\n  per_run: 2\n",
        "policy.yaml: budgets.per_run: unknown field; did you mean 'per_run_usd'?",
    ),
    (
        "unknown section",
        PRICES + "budget: {}\n",
        "policy.yaml: budget: unknown field; did you mean 'budgets'?",
    ),
    (
        "negative limit",
        PRICES + "budgets:\n  per_run_usd: -1\n",
        "policy.yaml: budgets.per_run_usd: Input should be greater than 0 (got -1)",
    ),
    (
        "unknown action",
        PRICES + "budgets:\n  on_exceed: panic\n",
        "policy.yaml: budgets.on_exceed: Input should be 'approve_spend', 'downgrade' or 'stop'"
        " (got 'panic')",
    ),
    (
        "bad duration",
        PRICES + "review:\n  timeouts:\n    remind_after: 4 hours-ish\n",
        "policy.yaml: review.timeouts.remind_after: not a valid duration",
    ),
    (
        "timeouts out of order",
        PRICES + "review:\n  timeouts: {remind_after: 30h}\n",
        "policy.yaml: review.timeouts: remind_after (1d6h) must come before escalate_after (1d)",
    ),
    (
        "review expires before its default",
        PRICES + "review:\n  expires_after: 1d\n",
        "policy.yaml: review.expires_after: a review must not expire (1d) before its timeout",
    ),
    (
        "unknown tier",
        PRICES + "routing:\n  tiers:\n    medium: [simulated/cheap]\n",
        "policy.yaml: routing.tiers.medium: invalid key: Input should be 'cheap' or 'strong'",
    ),
    (
        "unpriced model",
        PRICES + "routing:\n  tiers:\n    cheap: [openai/gpt-5]\n",
        "policy.yaml: routing.tiers.cheap[0]: model 'openai/gpt-5' has no price in 'prices'",
    ),
    (
        "unpriced provider embedding model",
        PRICES + "cache:\n  embedder: provider\n  embedding_model: openai/text-embedding-3-large\n",
        "policy.yaml: cache.embedding_model: 'openai/text-embedding-3-large' has no price in 'prices'",
    ),
    (
        "unpriced simulated fallback",
        "prices:\n  simulated/cheap: {input_per_mtok: 1, output_per_mtok: 1}\n"
        "routing:\n  tiers: {cheap: [simulated/cheap], strong: []}\n",
        "policy.yaml: prices: 'simulated/strong' needs a price",
    ),
    (
        "missing prices",
        "budgets: {}\n",
        "policy.yaml: prices: required field is missing",
    ),
    (
        "step override invalid with the defaults",
        PRICES
        + "confidence:\n  thresholds: {accept: 0.9, review: 0.8, escalate: 0.7}\n"
        + "workflows:\n  w:\n    steps:\n      s:\n        thresholds: {accept: 0.6}\n",
        "policy.yaml: workflows.w.steps.s: invalid with the defaults it overrides: "
        "thresholds: thresholds must satisfy accept >= review >= escalate",
    ),
    (
        "bad rule",
        PRICES
        + "workflows:\n  w:\n    steps:\n      s:\n        rules:\n"
        + "          - {name: a, field: x, pattern: '('}\n",
        "policy.yaml: workflows.w.steps.s.rules[0].pattern: invalid regular expression",
    ),
    (
        "duplicate rule names",
        PRICES
        + "workflows:\n  w:\n    steps:\n      s:\n        rules:\n"
        + "          - {name: a, field: x}\n          - {name: a, field: y}\n",
        "policy.yaml: workflows.w.steps.s.rules[1].name: duplicate rule name 'a'",
    ),
    (
        "all weights zero",
        PRICES
        + "confidence:\n  weights: "
        + "{schema_validity: 0, logprobs: 0, self_consistency: 0, judge: 0, rules: 0}\n",
        "policy.yaml: confidence.weights: at least one weight must be positive",
    ),
    (
        "duplicate reviewer",
        PRICES
        + "reviewers:\n  - {name: alice, password: x, roles: [r]}\n"
        + "  - {name: Alice, password: y, roles: [r]}\n",
        "policy.yaml: reviewers[1].name: duplicate reviewer 'Alice'",
    ),
    (
        "duplicate YAML key",
        PRICES + "budgets: {}\nbudgets: {}\n",
        "policy.yaml: invalid YAML at line 5, column 1: duplicate key 'budgets'",
    ),
    (
        "broken YAML",
        PRICES + "budgets: [\n",
        "policy.yaml: invalid YAML at line 5",
    ),
    ("empty file", "", "policy.yaml: the policy file is empty"),
    (
        "list at top level",
        "- prices\n",
        "policy.yaml: the top level must be a mapping of policy sections, not a list",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in BAD_POLICIES], ids=[case[0] for case in BAD_POLICIES]
)
def test_a_bad_policy_gives_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_policy_text(text, source="policy.yaml")
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_password_is_never_echoed_in_an_error() -> None:
    text = PRICES + "reviewers:\n  - {name: a, password: 123456789, roles: [r]}\n"
    with pytest.raises(ConfigurationError) as raised:
        load_policy_text(text, source="policy.yaml")
    assert str(raised.value) == "policy.yaml: reviewers[0].password: Input should be a valid string"


def test_many_problems_are_summarised_on_one_line() -> None:
    text = PRICES + "budgets: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7}\n"
    with pytest.raises(ConfigurationError, match=r"; and 2 more$"):
        load_policy_text(text)


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = (
        PRICES
        + "workflows:\n  w:\n    steps:\n"
        + "      a: &step {samples: 3, judge: true}\n"
        + "      b:\n        <<: *step\n        samples: 5\n"
    )
    policy = load_policy_text(text)
    step = policy.workflows["w"].steps["b"]
    assert (step.samples, step.judge) == (5, True)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError, match=r"nope\.yaml: cannot read the policy file"):
        load_policy(missing)
