"""support_triage's input, outputs and steps.

Kept apart from the workflow and imported passed through the sandbox: the sandbox re-runs a
workflow's own module for every run, and building these models each time costs CPU and memory.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tether.sdk import LlmStep, PromptTemplate, TetherResult


class Ticket(BaseModel):
    """Input of support_triage."""

    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1, max_length=50_000)
    customer_id: str | None = Field(default=None, max_length=200)
    tenant: str | None = Field(default=None, max_length=100)
    requester: str | None = Field(default=None, max_length=200)


class Classification(BaseModel):
    category: Literal["billing", "technical", "account", "feature_request", "other"]
    priority: Literal["low", "normal", "high", "urgent"]
    rationale: str = Field(max_length=300)


class TicketFacts(BaseModel):
    order_id: str | None = None
    product: str | None = None
    sentiment: Literal["negative", "neutral", "positive"]
    customer_asks: list[str] = Field(default_factory=list, max_length=5)


class DraftReply(BaseModel):
    reply: str = Field(min_length=1, max_length=4000)
    needs_followup: bool


class TriageResult(TetherResult):
    category: str | None = None
    priority: str | None = None
    facts: TicketFacts | None = None
    reply: str | None = None


CLASSIFY = LlmStep(
    name="classify",
    prompt=PromptTemplate(
        id="support_triage.classify",
        version="1",
        system="You triage customer support tickets. Answer with JSON only.",
        user="Classify this ticket by category and priority.\nSubject: {subject}\n\n{body}",
    ),
    output=Classification,
    tier="auto",  # route_rules: the cheap model, the strong one for code, other languages...
)

EXTRACT = LlmStep(
    name="extract",
    prompt=PromptTemplate(
        id="support_triage.extract",
        version="1",
        system="You extract facts from support tickets. Answer with JSON only; use null when absent.",
        user="Extract the order id, product, sentiment and what the customer asks for.\n"
        "Subject: {subject}\n\n{body}",
    ),
    output=TicketFacts,
    tier="auto",
)

DRAFT_REPLY = LlmStep(
    name="draft_reply",
    prompt=PromptTemplate(
        id="support_triage.draft_reply",
        version="1",
        system="You are a courteous, precise support agent. Answer with JSON only.",
        user="Draft a reply to this {category} ticket (priority {priority}).\n"
        "Customer asks: {asks}\nSubject: {subject}\n\n{body}",
    ),
    output=DraftReply,
    tier="auto",
)
