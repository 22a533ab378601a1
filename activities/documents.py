"""Document intake: apply the context guard, chunk, and store chunks so steps pass references."""

from __future__ import annotations

import asyncio

from sqlmodel import Session
from temporalio import activity

from activities.deps import ActivityDeps
from activities.pii_presidio import pii_detectors
from policies.effective import effective_for, pii_settings
from policies.guards import chunk_text, guard_input
from tether.contracts import PreparedDocument, PrepareDocumentInput
from tether.store.pii_vault import pii_sealer
from tether.store.run_ids import run_tenant
from tether.store.run_pii import redact_for_run
from tether.store.texts import put_text


class DocumentActivities:
    def __init__(self, deps: ActivityDeps) -> None:
        self.deps = deps

    @activity.defn(name="tether.prepare_document")
    async def prepare_document(self, inp: PrepareDocumentInput) -> PreparedDocument:
        policy = effective_for(self.deps.policy, inp.workflow).input_guard
        guarded = guard_input(inp.document, policy)
        kept = guarded.text
        if guarded.action == "escalate":
            # Prepared truncated, so that a reviewer who approves lets the run go on at once.
            kept = guard_input(
                inp.document, policy.model_copy(update={"on_oversize": "truncate"})
            ).text
        chunks = chunk_text(kept, inp.chunk_chars)

        pii = pii_settings(self.deps.policy, inp.workflow)
        detectors = await asyncio.to_thread(pii_detectors, pii)  # the first builds Presidio's

        def _store(session: Session) -> list[str]:
            # Stored texts hold placeholders, like the run's input (defense in depth: the input
            # was redacted when the run started).
            tenant = run_tenant(session, inp.run_id)[1] or "default"
            sealer = pii_sealer(self.deps.settings)
            redacted = redact_for_run(
                session, sealer, pii, chunks, detectors=detectors, run_id=inp.run_id,
                tenant=tenant, where="document",
            )  # fmt: skip
            return [put_text(session, chunk) for chunk in redacted]

        keys = await self.deps.in_session(_store)
        return PreparedDocument(
            guard_action=guarded.action,
            original_chars=guarded.original_chars,
            kept_chars=len(kept),
            max_input_chars=policy.max_input_chars,
            chunk_keys=keys,
            chunk_chars=[len(c) for c in chunks],
        )
