"""document_summary: a long document -> chunk summaries -> one final summary.

The document goes to the store once; chunks travel by reference. The context guard decides
what happens to a document over the policy's size limit: truncate, summarize, or escalate.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from tether.contracts import PreparedDocument, PrepareDocumentInput
    from tether.sdk import RunHalted, TetherWorkflow

    # ChunkSummary and FinalSummary stay importable from here: steps scheduled and review items
    # opened before the models moved to the _steps module name them by this module's path.
    from workflows.document_summary_steps import (  # noqa: F401
        FINAL_SUMMARY,
        SUMMARIZE_CHUNK,
        ChunkSummary,
        Document,
        FinalSummary,
        SummaryResult,
    )
    from workflows.engine.state import SHORT_ACTIVITY_RETRY


@workflow.defn(name="document_summary")
class DocumentSummary(TetherWorkflow):
    @workflow.run
    async def run(self, doc: Document) -> SummaryResult:
        title = doc.title or "(untitled)"
        self.begin(
            tenant=doc.tenant,
            requester=doc.requester,
            input_preview={
                "title": title,
                "chars": len(doc.document),
                "start": doc.document[:1000],
            },
        )
        prepared = await workflow.execute_activity_method(
            DocumentActivities.prepare_document,
            PrepareDocumentInput(
                run_id=self.run_id, workflow="document_summary", document=doc.document
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=SHORT_ACTIVITY_RETRY,
        )
        result = SummaryResult(
            guard_action=prepared.guard_action, original_chars=prepared.original_chars
        )
        try:
            if prepared.guard_action == "escalate":
                await self._approve_oversize(prepared)
            partials = []
            for index, key in enumerate(prepared.chunk_keys, start=1):
                part = await self.llm_step(
                    SUMMARIZE_CHUNK,
                    {"part": str(index), "parts": str(len(prepared.chunk_keys)), "title": title},
                    text_refs={"chunk": key},
                    input_chars=prepared.chunk_chars[index - 1],
                )
                partials.append(f"Part {index}: {part.output.summary}")
            final = await self.llm_step(
                FINAL_SUMMARY, {"title": title, "partials": "\n".join(partials)}
            )
        except RunHalted as halt:
            return self.halted(result, halt)
        return self.finish(
            result.model_copy(
                update={
                    "summary": final.output.summary,
                    "key_points": final.output.key_points,
                    "chunks": len(prepared.chunk_keys),
                }
            )
        )

    async def _approve_oversize(self, prepared: PreparedDocument) -> None:
        decision = await self.ask_approval(
            step="guard",
            summary=(
                f"document of {prepared.original_chars} characters is over the "
                f"{prepared.max_input_chars} limit; approve to summarise it truncated"
            ),
            request={"original_chars": prepared.original_chars, "limit": prepared.max_input_chars},
        )
        if decision.kind == "reject":
            raise RunHalted("blocked", "guard", f"oversized document rejected: {decision.reason}")
