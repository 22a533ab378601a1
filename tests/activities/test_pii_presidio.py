"""Presidio as a PII detector (the ``presidio`` extra, installed by ``make install``): the real
analyzer, on a blank spaCy tokenizer, finds kinds the built-in detectors do not have; a policy
that does not choose it does not find them; without the extra, the policy is refused at load."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from activities.deps import ActivityDeps
from activities.llm_step.pii_guard import StepPii
from activities.pii_presidio import pii_detectors
from activities.providers.base import ChatMessage
from policies.guard_settings import PiiGuardSettings, PresidioSettings
from policies.loader import load_policy_text
from policies.pii import redact, redact_value, restore
from tether.contracts import LlmStepInput, PromptTemplate
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from tether.store.engine import dispose_all, session_scope, upgrade_database
from tether.store.pii_vault import keep_originals, pii_sealer, run_originals

ONLY_PRESIDIO = {
    "US_PASSPORT": "912803456",
    "UK_NHS": "4010232137",
    "US_DRIVER_LICENSE": "D1234567",
    "US_ITIN": "911-70-1234",
    "CRYPTO": "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
}
"""Values of kinds only Presidio knows (the ITIN's area 911 is no valid SSN)."""
TEXT = (
    f"My passport is {ONLY_PRESIDIO['US_PASSPORT']}, NHS number {ONLY_PRESIDIO['UK_NHS']}, "
    f"driver license {ONLY_PRESIDIO['US_DRIVER_LICENSE']}, ITIN {ONLY_PRESIDIO['US_ITIN']}; "
    f"refund in bitcoin to {ONLY_PRESIDIO['CRYPTO']} and mail jane@example.com."
)
BOTH = PiiGuardSettings(detectors=("builtin", "presidio"))


def test_presidio_redacts_kinds_the_builtin_detectors_lack_and_restores_them() -> None:
    redaction = redact(TEXT, BOTH, pii_detectors(BOTH))
    assert redaction.text == (
        "My passport is [US_PASSPORT_1], NHS number [UK_NHS_1], driver license "
        "[US_DRIVER_LICENSE_1], ITIN [US_ITIN_1]; refund in bitcoin to [CRYPTO_1] and mail "
        "[EMAIL_1]."
    )
    assert not [value for value in ONLY_PRESIDIO.values() if value in redaction.text]
    assert restore(redaction.text, redaction.mapping) == TEXT


def test_the_builtin_policy_does_not_find_them() -> None:
    builtin = PiiGuardSettings()
    assert pii_detectors(builtin) == ()
    redaction = redact(TEXT, builtin, pii_detectors(builtin))
    assert [value for value in ONLY_PRESIDIO.values() if value in redaction.text] == list(
        ONLY_PRESIDIO.values()
    )
    assert redaction.counts == {"EMAIL": 1}


def test_presidio_alone_leaves_the_builtin_kinds_and_honours_entities_and_threshold() -> None:
    settings = PiiGuardSettings(
        detectors=("presidio",), presidio=PresidioSettings(entities=frozenset({"UK_NHS"}))
    )
    redacted = redact_value({"note": TEXT}, settings, pii_detectors(settings))
    assert redacted.counts == {"UK_NHS": 1}
    assert "jane@example.com" in str(redacted.value)
    # A weak pattern without a context word stays under the threshold: a bare 9-digit number
    # is no passport.
    strict = PiiGuardSettings(detectors=("presidio",))
    assert redact("Order 912803456 shipped", strict, pii_detectors(strict)).counts == {}


def test_a_policy_file_chooses_presidio() -> None:
    text = resources.files("policies").joinpath("default.yaml").read_text(encoding="utf-8")
    chosen = text.replace(
        "  detectors: [builtin]",
        "  detectors: [builtin, presidio]\n"
        "  presidio: {entities: [UK_NHS, CRYPTO], language: en, score_threshold: 0.5}\n",
    )
    assert chosen != text
    pii = load_policy_text(chosen).pii
    assert pii.detectors == ("builtin", "presidio")
    assert pii.presidio.entities == {"UK_NHS", "CRYPTO"}
    assert redact(TEXT, pii, pii_detectors(pii)).counts == {"UK_NHS": 1, "CRYPTO": 1, "EMAIL": 1}


def test_without_the_extra_choosing_presidio_fails_at_load_naming_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)  # as if not installed
    text = resources.files("policies").joinpath("default.yaml").read_text(encoding="utf-8")
    chosen = text.replace("  detectors: [builtin]", "  detectors: [presidio]")
    assert chosen != text
    with pytest.raises(ConfigurationError) as error:
        load_policy_text(chosen, "team.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("team.yaml: ") and "pip install 'tether[presidio]'" in message
    # The built-in detectors alone need nothing more.
    assert load_policy_text(text).pii.detectors == ("builtin",)


def test_entities_presidio_cannot_find_offline_are_refused() -> None:
    with pytest.raises(ValidationError, match="needs a spaCy NER model"):
        PresidioSettings(entities=frozenset({"PERSON"}))
    with pytest.raises(ValidationError, match="public suffix list"):
        PresidioSettings(entities=frozenset({"URL"}))
    unknown = PiiGuardSettings(
        detectors=("presidio",), presidio=PresidioSettings(entities=frozenset({"NO_SUCH_ID"}))
    )
    with pytest.raises(ConfigurationError, match="no pattern recognizer for NO_SUCH_ID"):
        pii_detectors(unknown)


async def test_a_steps_prompt_and_answer_are_redacted_by_presidio_into_the_runs_vault(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"TETHER_HOME": str(tmp_path)})
    url = settings.resolved_database_url
    upgrade_database(url)
    configure_audit(settings)
    sealer = pii_sealer(settings)
    with session_scope(url) as session:  # what the run's start kept
        keep_originals(session, sealer, "run-1", "default", {"[UK_NHS_1]": "4010232137"})
    policy = load_policy_text(
        resources.files("policies").joinpath("default.yaml").read_text(encoding="utf-8")
    )
    policy = policy.model_copy(update={"pii": BOTH})
    deps = ActivityDeps(settings=settings, policy=policy, providers=cast(Any, None))
    step = LlmStepInput(
        run_id="run-1",
        workflow="support_triage",
        step="draft_reply",
        prompt=PromptTemplate(id="p", version="1", system="s", user="{text}"),
        output_model="workflows.support_triage_steps:DraftReply",
        idempotency_key="run-1/draft_reply/1",
    )
    guard = StepPii(deps, step)
    try:
        messages, event = await guard.redact_messages([ChatMessage(role="user", content=TEXT)])
        assert messages[0].content.startswith(
            "My passport is [US_PASSPORT_1], NHS number [UK_NHS_1], driver license"
        )
        assert not [value for value in ONLY_PRESIDIO.values() if value in messages[0].content]
        assert event is not None and event.guard == "pii" and "CRYPTO x1" in event.detail
        with session_scope(url) as session:
            vault = run_originals(session, sealer, "run-1")
        assert vault["[CRYPTO_1]"] == ONLY_PRESIDIO["CRYPTO"]
        assert vault["[UK_NHS_1]"] == "4010232137"
        # A prompt holding only the run's placeholders is left as it is, and counted.
        again, seen = await guard.redact_messages(messages)
        assert again == messages and seen is not None and "UK_NHS x1" in seen.detail
    finally:
        dispose_all()
