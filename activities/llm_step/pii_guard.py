"""The PII guard of a step: what goes to the provider and what comes back are redacted.

A run's input was redacted when it started, so this catches what entered later: text produced by
earlier steps, a reviewer's feedback, stored documents (before the provider call), and personal
data the model wrote itself (before its answer is scored by a judge, returned into the run's
history, put in a review item or a Slack message). The run's vault keeps numbering stable (a
value redacted at the start keeps its placeholder) and takes the new values, so the final output
can still be restored. The step records which kinds it carried as placeholders, never a value.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, cast

from sqlmodel import Session

from activities.deps import ActivityDeps
from activities.llm_step.prompting import Answer
from activities.pii_presidio import pii_detectors
from activities.providers.base import ChatMessage
from policies.effective import pii_settings
from policies.pii import JsonValue, PiiDetector, Redactor, placeholder_counts, summary
from tether.contracts import GuardEvent, LlmStepInput
from tether.store.pii_vault import pii_sealer
from tether.store.run_pii import keep_redaction, run_redactor

__all__ = ["StepPii"]


class StepPii:
    """One step's redactions: the messages first, then the answer, sharing the run's mapping.

    The run's vault is read only when there is something new to redact (most prompts carry only
    the placeholders the run's start issued): a read costs about a millisecond per step.
    """

    def __init__(self, deps: ActivityDeps, inp: LlmStepInput) -> None:
        self._deps, self._inp = deps, inp
        self._settings = pii_settings(deps.policy, inp.workflow)
        self._detectors: tuple[PiiDetector, ...] | None = None
        self._known: dict[str, str] | None = None
        """The run's placeholders and values, once read from the vault."""

    async def redact_messages(
        self, messages: list[ChatMessage]
    ) -> tuple[list[ChatMessage], GuardEvent | None]:
        """The messages with personal values replaced by the run's placeholders, and the
        ``pii`` event (None when the prompt carries none, or the guard is off)."""
        if not self._settings.enabled:
            return messages, None
        detectors = await self._with_detectors()
        probe = Redactor(self._settings, detectors)
        for message in messages:
            probe.redact(message.content)
        if not probe.counts:  # only placeholders issued earlier (or none): nothing to keep
            kinds = self._settings.kinds.union(*(d.kinds for d in detectors))
            counts = placeholder_counts((m.content for m in messages), kinds=kinds)
            return messages, _event("redacted", counts)
        redactor = await self._keep(lambda r: [r.redact(m.content) for m in messages], "step")
        redacted = [
            m.model_copy(update={"content": r})
            for m, r in zip(messages, redactor.results, strict=True)
        ]
        counts = placeholder_counts((m.content for m in redacted), redactor.mapping)
        return redacted, _event("redacted", counts)

    async def redact_answer(self, answer: Answer) -> tuple[Answer, GuardEvent | None]:
        """The answer with personal values the model wrote replaced by placeholders (new values
        join the run's vault), and a ``redacted_output`` event when there were any."""
        if not self._settings.enabled:
            return answer, None
        detectors = await self._with_detectors()
        probe = Redactor(self._settings, detectors, known=self._known or {})
        probe.redact_value(cast(JsonValue, answer.output))
        probe.redact(answer.response.text)
        if not probe.counts:
            return answer, None

        def _redact(redactor: Redactor) -> list[object]:
            output = redactor.redact_value(cast(JsonValue, answer.output))
            counts = dict(redactor.counts)  # the output's hits (its raw text repeats them)
            return [output, counts, redactor.redact(answer.response.text)]

        redactor = await self._keep(_redact, "output")
        output, counts, text = redactor.results
        response = answer.response.model_copy(update={"text": text})
        redacted = dataclasses.replace(
            answer, response=response, output=cast("dict[str, object] | None", output)
        )
        return redacted, _event("redacted_output", cast(dict[str, int], counts) or redactor.counts)

    async def _with_detectors(self) -> tuple[PiiDetector, ...]:
        """The policy's detectors; the first use in a worker builds Presidio's analyzer (spaCy
        import, seconds), off the event loop."""
        if self._detectors is None:
            self._detectors = await asyncio.to_thread(pii_detectors, self._settings)
        return self._detectors

    async def _keep(self, work: Callable[[Redactor], list[Any]], where: str) -> _Done:
        """Run ``work`` with a redactor that continues the run's numbering; keep what it
        issued in the vault (and audit it), in one transaction."""
        inp, settings, detectors = self._inp, self._settings, self._detectors or ()

        def _in_store(session: Session) -> _Done:
            sealer = pii_sealer(self._deps.settings)
            if self._known is None:
                redactor, known = run_redactor(session, sealer, inp.run_id, settings, detectors)
            else:
                known = self._known
                redactor = Redactor(settings, detectors, known=known)
            results = work(redactor)
            keep_redaction(
                session, sealer, redactor, run_id=inp.run_id, tenant=inp.tenant,
                where=f"{where}:{inp.idempotency_key}", known=known,
            )  # fmt: skip
            return _Done(results, dict(redactor.mapping), dict(redactor.counts))

        done = await self._deps.in_session(_in_store)
        self._known = done.mapping
        return done


@dataclasses.dataclass(frozen=True)
class _Done:
    results: list[Any]
    mapping: dict[str, str]
    counts: dict[str, int]


def _event(outcome: str, counts: dict[str, int]) -> GuardEvent | None:
    if not counts:
        return None
    return GuardEvent(
        guard="pii", outcome=outcome, detail=summary(counts), value=sum(counts.values())
    )
