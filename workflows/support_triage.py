"""support_triage: classify a support ticket, extract its facts, draft a reply; a human reviews
whatever the confidence gate is unsure about."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether.sdk import RunHalted, TetherWorkflow

    # Classification, DraftReply and TicketFacts stay importable from here: steps scheduled
    # and review items opened before the models moved to the _steps module name them by
    # this module's path.
    from workflows.support_triage_steps import (  # noqa: F401
        CLASSIFY,
        DRAFT_REPLY,
        EXTRACT,
        Classification,
        DraftReply,
        Ticket,
        TicketFacts,
        TriageResult,
    )


@workflow.defn(name="support_triage")
class SupportTriage(TetherWorkflow):
    @workflow.run
    async def run(self, ticket: Ticket) -> TriageResult:
        self.begin(
            tenant=ticket.tenant,
            end_user=ticket.customer_id,
            requester=ticket.requester,
            input_preview={"subject": ticket.subject, "body": ticket.body[:2000]},
        )
        text = {"subject": ticket.subject, "body": ticket.body}
        try:
            classified = await self.llm_step(CLASSIFY, text)
            facts = await self.llm_step(EXTRACT, text)
            draft = await self.llm_step(
                DRAFT_REPLY,
                text
                | {
                    "category": classified.output.category,
                    "priority": classified.output.priority,
                    "asks": "; ".join(facts.output.customer_asks) or "(not stated)",
                },
            )
        except RunHalted as halt:
            return self.halted(TriageResult(), halt)
        return self.finish(
            TriageResult(
                category=classified.output.category,
                priority=classified.output.priority,
                facts=facts.output,
                reply=draft.output.reply,
            )
        )
