"""The ``retention:`` policy section: the shipped default prunes with safe settings, and a value
that would prune what the learned routing rule still reads is refused in one line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies.loader import load_policy, load_policy_text
from tether.core.errors import ConfigurationError

PRICES = """\
prices:
  simulated/cheap: {input_per_mtok: 0.15, output_per_mtok: 0.60}
  simulated/strong: {input_per_mtok: 2.50, output_per_mtok: 10.00}
"""


def test_the_default_prunes_every_ten_minutes_keeping_what_the_learned_rule_reads() -> None:
    retention = load_policy().retention
    assert retention.enabled
    assert retention.every == timedelta(minutes=10)
    assert retention.keep_verdicts == 5_000
    assert retention.limit_window_grace == timedelta(days=1)
    assert retention.batch_rows == 1_000


def test_durations_load_and_a_policy_without_the_section_gets_the_defaults() -> None:
    policy = load_policy_text(PRICES + "retention:\n  every: 1h\n  verdict_max_age: 90d\n")
    assert policy.retention.every == timedelta(hours=1)
    assert policy.retention.verdict_max_age == timedelta(days=90)
    assert load_policy_text(PRICES).retention.every == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("keep_verdicts: 100", "retention.keep_verdicts"),
        ("limit_window_grace: 5m", "retention.limit_window_grace"),
        ("batch_rows: 1000000", "retention.batch_rows"),
        ("every: 0s", "retention.every"),
        ("prune_audit: true", "retention.prune_audit"),
    ],
)
def test_unsafe_or_unknown_settings_are_refused_in_one_line(setting: str, where: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_policy_text(PRICES + f"retention:\n  {setting}\n", source="policy.yaml")
    assert where in str(raised.value) and "\n" not in str(raised.value)
