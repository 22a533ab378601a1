"""The PII guard of a step: the rendered messages are redacted again before the provider call.

A run's input was redacted when it started, so this catches what entered later: text produced by
earlier steps, a reviewer's feedback, stored documents. The run's vault keeps numbering stable
(a value redacted at the start keeps its placeholder); new values join the vault. The step
records which kinds its prompt carried as placeholders, never the values.
"""

from __future__ import annotations

from sqlmodel import Session

from activities.deps import ActivityDeps
from activities.providers.base import ChatMessage
from policies.effective import pii_settings
from policies.pii import placeholder_counts, summary
from tether.contracts import GuardEvent, LlmStepInput
from tether.store.pii_vault import pii_sealer
from tether.store.run_pii import keep_redaction, run_redactor

__all__ = ["redact_messages"]


async def redact_messages(
    deps: ActivityDeps, inp: LlmStepInput, messages: list[ChatMessage]
) -> tuple[list[ChatMessage], GuardEvent | None]:
    """The messages with personal values replaced by the run's placeholders, and the step's
    ``pii`` guard event (None when the prompt carries none, or the guard is off)."""
    pii = pii_settings(deps.policy, inp.workflow)
    if not pii.enabled:
        return messages, None

    def _redact(session: Session) -> tuple[list[ChatMessage], dict[str, str]]:
        sealer = pii_sealer(deps.settings)
        redactor, known = run_redactor(session, sealer, inp.run_id, pii)
        redacted = [m.model_copy(update={"content": redactor.redact(m.content)}) for m in messages]
        if redactor.counts:
            where = f"step:{inp.idempotency_key}"
            keep_redaction(
                session, sealer, redactor, run_id=inp.run_id, tenant=inp.tenant, where=where,
                known=known,
            )  # fmt: skip
        return redacted, redactor.mapping

    redacted, mapping = await deps.in_session(_redact)
    counts = placeholder_counts((m.content for m in redacted), mapping)
    if not counts:
        return redacted, None
    event = GuardEvent(
        guard="pii", outcome="redacted", detail=summary(counts), value=sum(counts.values())
    )
    return redacted, event
