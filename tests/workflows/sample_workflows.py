"""Small workflows used by the engine tests: fast retries so failures are quick to exercise."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether.contracts import PromptTemplate
    from workflows.engine import TetherWorkflow
    from workflows.steps import LlmStep, RunHalted, StepOptions, TetherResult


class Question(BaseModel):
    text: str
    tenant: str | None = None
    user: str | None = None
    requester: str | None = None


class Answer(BaseModel):
    answer: str
    sure: bool


class OneStepResult(TetherResult):
    answer: str | None = None
    disposition: str | None = None


FAST = StepOptions(
    initial_retry=timedelta(milliseconds=100),
    max_retry_interval=timedelta(milliseconds=500),
    heartbeat=timedelta(seconds=3),
    max_attempts=4,
)

ANSWER = LlmStep(
    name="answer",
    prompt=PromptTemplate(id="test.answer", version="1", system="Answer in JSON.", user="{text}"),
    output=Answer,
    options=FAST,
)

ANSWER_STRONG = LlmStep(
    name="answer",
    prompt=ANSWER.prompt,
    output=Answer,
    tier="strong",
    options=FAST,
)


@workflow.defn(name="test_one_step")
class OneStep(TetherWorkflow):
    @workflow.run
    async def run(self, question: Question) -> OneStepResult:
        self.begin(tenant=question.tenant, end_user=question.user, requester=question.requester)
        try:
            answered = await self.llm_step(ANSWER, {"text": question.text})
        except RunHalted as halt:
            return self.halted(OneStepResult(), halt)
        return self.finish(
            OneStepResult(answer=answered.output.answer, disposition=answered.disposition)
        )


@workflow.defn(name="test_one_strong_step")
class OneStrongStep(TetherWorkflow):
    @workflow.run
    async def run(self, question: Question) -> OneStepResult:
        self.begin(tenant=question.tenant, end_user=question.user)
        try:
            answered = await self.llm_step(ANSWER_STRONG, {"text": question.text})
        except RunHalted as halt:
            return self.halted(OneStepResult(), halt)
        return self.finish(
            OneStepResult(answer=answered.output.answer, disposition=answered.disposition)
        )


ANSWER_AUTO = LlmStep(
    name="answer",
    prompt=ANSWER.prompt,
    output=Answer,
    tier="auto",
    options=FAST,
)


@workflow.defn(name="test_one_auto_step")
class OneAutoStep(TetherWorkflow):
    """One step whose tier the routing rules choose."""

    @workflow.run
    async def run(self, question: Question) -> OneStepResult:
        self.begin(tenant=question.tenant, end_user=question.user)
        try:
            answered = await self.llm_step(ANSWER_AUTO, {"text": question.text})
        except RunHalted as halt:
            return self.halted(OneStepResult(), halt)
        return self.finish(
            OneStepResult(answer=answered.output.answer, disposition=answered.disposition)
        )


TEST_WORKFLOWS = [OneStep, OneStrongStep, OneAutoStep]
