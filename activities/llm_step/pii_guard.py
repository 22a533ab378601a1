"""The PII guard of a step: what goes to the provider and what comes back are redacted.

A run's input was redacted when it started, so this catches what entered later: text produced by
earlier steps, a reviewer's feedback, stored documents (before the provider call), and personal
data the model wrote itself (before its answer is scored by a judge, returned into the run's
history, put in a review item or a Slack message). The run's vault keeps numbering stable (a
value redacted at the start keeps its placeholder) and takes the new values, so the final output
can still be restored. The step records which kinds it carried as placeholders, never a value.
"""

from __future__ import annotations

import dataclasses
from typing import cast

from sqlmodel import Session

from activities.deps import ActivityDeps
from activities.llm_step.prompting import Answer
from activities.providers.base import ChatMessage
from policies.effective import pii_settings
from policies.pii import JsonValue, Redactor, placeholder_counts, summary
from tether.contracts import GuardEvent, LlmStepInput
from tether.store.pii_vault import pii_sealer
from tether.store.run_pii import keep_redaction, run_redactor

__all__ = ["StepPii"]


class StepPii:
    """One step's redactions: the messages first, then the answer, sharing the run's mapping."""

    def __init__(self, deps: ActivityDeps, inp: LlmStepInput) -> None:
        self._deps, self._inp = deps, inp
        self._settings = pii_settings(deps.policy, inp.workflow)
        self._mapping: dict[str, str] = {}

    async def redact_messages(
        self, messages: list[ChatMessage]
    ) -> tuple[list[ChatMessage], GuardEvent | None]:
        """The messages with personal values replaced by the run's placeholders, and the
        ``pii`` event (None when the prompt carries none, or the guard is off)."""
        if not self._settings.enabled:
            return messages, None
        inp = self._inp

        def _redact(session: Session) -> tuple[list[ChatMessage], dict[str, str]]:
            sealer = pii_sealer(self._deps.settings)
            redactor, known = run_redactor(session, sealer, inp.run_id, self._settings)
            redacted = [
                m.model_copy(update={"content": redactor.redact(m.content)}) for m in messages
            ]
            if redactor.counts:
                where = f"step:{inp.idempotency_key}"
                keep_redaction(
                    session, sealer, redactor, run_id=inp.run_id, tenant=inp.tenant, where=where,
                    known=known,
                )  # fmt: skip
            return redacted, redactor.mapping

        redacted, self._mapping = await self._deps.in_session(_redact)
        counts = placeholder_counts((m.content for m in redacted), self._mapping)
        return redacted, _event("redacted", counts)

    async def redact_answer(self, answer: Answer) -> tuple[Answer, GuardEvent | None]:
        """The answer with personal values the model wrote replaced by placeholders (new values
        join the run's vault), and a ``redacted_output`` event when there were any."""
        if not self._settings.enabled:
            return answer, None
        redactor = Redactor(self._settings, known=self._mapping)
        output = redactor.redact_value(cast(JsonValue, answer.output))
        counts = dict(redactor.counts)  # the output's hits (its raw text repeats them)
        text = redactor.redact(answer.response.text)
        if not redactor.counts:
            return answer, None
        inp, known = self._inp, dict(self._mapping)

        def _keep(session: Session) -> None:
            sealer = pii_sealer(self._deps.settings)
            where = f"output:{inp.idempotency_key}"
            keep_redaction(
                session, sealer, redactor, run_id=inp.run_id, tenant=inp.tenant, where=where,
                known=known,
            )  # fmt: skip

        await self._deps.in_session(_keep)
        self._mapping = redactor.mapping
        response = answer.response.model_copy(update={"text": text})
        redacted = dataclasses.replace(
            answer, response=response, output=cast("dict[str, object] | None", output)
        )
        return redacted, _event("redacted_output", counts or redactor.counts)


def _event(outcome: str, counts: dict[str, int]) -> GuardEvent | None:
    if not counts:
        return None
    return GuardEvent(
        guard="pii", outcome=outcome, detail=summary(counts), value=sum(counts.values())
    )
