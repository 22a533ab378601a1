"""A one-step workflow for the cache tests, in three variants of its step: the prompt at
version 1, the same prompt at version 2, and a step marked side-effecting."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tests.workflows.sample_workflows import FAST, Answer, OneStepResult, Question
    from tether.contracts import PromptTemplate
    from workflows.engine import TetherWorkflow
    from workflows.steps import LlmStep, RunHalted

PROMPT = PromptTemplate(id="test.cached", version="1", system="Answer in JSON.", user="{text}")

CACHED = LlmStep(name="answer", prompt=PROMPT, output=Answer, options=FAST)
CACHED_V2 = LlmStep(
    name="answer",
    prompt=PROMPT.model_copy(update={"version": "2"}),
    output=Answer,
    options=FAST,
)
SIDE_EFFECTING = LlmStep(
    name="answer", prompt=PROMPT, output=Answer, options=FAST, side_effecting=True
)


class CachedQuestion(Question):
    variant: str = "v1"


@workflow.defn(name="test_cached_step")
class CachedStep(TetherWorkflow):
    @workflow.run
    async def run(self, question: CachedQuestion) -> OneStepResult:
        self.begin(tenant=question.tenant, end_user=question.user)
        step = {"v2": CACHED_V2, "side": SIDE_EFFECTING}.get(question.variant, CACHED)
        try:
            answered = await self.llm_step(step, {"text": question.text})
        except RunHalted as halt:
            return self.halted(OneStepResult(), halt)
        return self.finish(
            OneStepResult(answer=answered.output.answer, disposition=answered.disposition)
        )
