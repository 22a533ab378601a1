"""A one-step workflow whose step carries a feature tag, for the metrics tests."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tests.workflows.sample_workflows import ANSWER, OneStepResult, Question
    from workflows.engine import TetherWorkflow
    from workflows.steps import LlmStep, RunHalted

FEATURE = "reply-draft"
TAGGED_ANSWER = LlmStep(
    name="answer",
    prompt=ANSWER.prompt,
    output=ANSWER.output,
    feature=FEATURE,
    options=ANSWER.options,
)


@workflow.defn(name="test_tagged_step")
class TaggedStep(TetherWorkflow):
    @workflow.run
    async def run(self, question: Question) -> OneStepResult:
        self.begin(tenant=question.tenant, end_user=question.user, requester=question.requester)
        try:
            answered = await self.llm_step(TAGGED_ANSWER, {"text": question.text})
        except RunHalted as halt:
            return self.halted(OneStepResult(), halt)
        return self.finish(
            OneStepResult(answer=answered.output.answer, disposition=answered.disposition)
        )
