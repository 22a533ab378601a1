"""The README's ``workflows/sentiment_steps.py``, word for word but for this docstring."""

from pydantic import BaseModel

from tether.sdk import LlmStep, PromptTemplate, TetherResult


class Sentiment(BaseModel):
    label: str
    score: float


class Review(BaseModel):
    text: str
    tenant: str | None = None


class SentimentResult(TetherResult):
    label: str | None = None


SCORE = LlmStep(
    name="score",
    prompt=PromptTemplate(
        id="sentiment.score",
        version="1",
        system="Answer with JSON only.",
        user="Rate the sentiment of: {text}",
    ),
    output=Sentiment,
    tier="cheap",  # or "strong", or "auto" (chosen by the policy's route_rules)
)
