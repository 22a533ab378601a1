"""The step's PII guard on a real store: text that entered a run after its start (here, a
prompt built from anything but the redacted input) is redacted with the run's numbering."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from activities.deps import ActivityDeps
from activities.llm_step.pii_guard import StepPii
from activities.providers.base import ChatMessage
from policies.loader import load_policy
from tether.contracts import LlmStepInput, PromptTemplate
from tether.core.settings import Settings
from tether.store.audit_key import configure_audit
from tether.store.engine import dispose_all, session_scope, upgrade_database
from tether.store.pii_vault import keep_originals, pii_sealer, run_originals


async def test_new_values_in_a_prompt_get_the_runs_next_placeholders(tmp_path: Path) -> None:
    settings = Settings.from_env({"TETHER_HOME": str(tmp_path)})
    url = settings.resolved_database_url
    upgrade_database(url)
    configure_audit(settings)
    sealer = pii_sealer(settings)
    with session_scope(url) as session:  # what the run's start kept
        keep_originals(session, sealer, "run-1", "default", {"[EMAIL_1]": "a@b.com"})
    deps = ActivityDeps(settings=settings, policy=load_policy(), providers=cast(Any, None))
    step = LlmStepInput(
        run_id="run-1",
        workflow="support_triage",
        step="draft_reply",
        prompt=PromptTemplate(id="p", version="1", system="s", user="{text}"),
        output_model="workflows.support_triage_steps:DraftReply",
        idempotency_key="run-1/draft_reply/1",
    )
    prompt = "Reply to [EMAIL_1]; cc a@b.com and c@d.org; card 4111 1111 1111 1111"
    guard = StepPii(deps, step)
    redacted, event = await guard.redact_messages([ChatMessage(role="user", content=prompt)])
    try:
        assert (
            redacted[0].content == "Reply to [EMAIL_1]; cc [EMAIL_1] and [EMAIL_2]; card [CARD_1]"
        )
        assert event is not None and event.detail == "EMAIL x3, CARD x1"
        with session_scope(url) as session:
            assert run_originals(session, sealer, "run-1") == {
                "[EMAIL_1]": "a@b.com",
                "[EMAIL_2]": "c@d.org",
                "[CARD_1]": "4111 1111 1111 1111",
            }
        # A prompt holding only the run's placeholders is left as it is, and counted.
        again, seen = await guard.redact_messages(redacted)
        assert again == redacted and seen is not None and seen.detail == "EMAIL x3, CARD x1"
    finally:
        dispose_all()
