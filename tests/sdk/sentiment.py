"""The README's ``workflows/sentiment.py``: it imports nothing of Tether but ``tether.sdk``."""

from tether.sdk import RunHalted, TetherWorkflow, workflow

with workflow.unsafe.imports_passed_through():
    from tests.sdk.sentiment_steps import SCORE, Review, SentimentResult


@workflow.defn(name="sentiment")
class SentimentWorkflow(TetherWorkflow):
    @workflow.run
    async def run(self, review: Review) -> SentimentResult:
        self.begin(tenant=review.tenant)  # budgets are charged to this tenant
        try:
            scored = await self.llm_step(SCORE, {"text": review.text})
        except RunHalted as halt:  # rejected, blocked, or over budget
            return self.halted(SentimentResult(), halt)
        return self.finish(SentimentResult(label=scored.output.label))
