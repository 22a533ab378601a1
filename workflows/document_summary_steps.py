"""document_summary's input, outputs and steps.

Kept apart from the workflow and imported passed through the sandbox: the sandbox re-runs a
workflow's own module for every run, and building these models each time costs CPU and memory.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether.sdk import LlmStep, PromptTemplate, TetherResult


class Document(BaseModel):
    """Input of document_summary."""

    document: str = Field(min_length=1, max_length=5_000_000)
    title: str | None = Field(default=None, max_length=300)
    tenant: str | None = Field(default=None, max_length=100)
    requester: str | None = Field(default=None, max_length=200)


class ChunkSummary(BaseModel):
    summary: str = Field(min_length=1, max_length=2000)
    key_points: list[str] = Field(default_factory=list, max_length=8)


class FinalSummary(BaseModel):
    summary: str = Field(min_length=1, max_length=4000)
    key_points: list[str] = Field(default_factory=list, max_length=12)


class SummaryResult(TetherResult):
    summary: str | None = None
    key_points: list[str] = []
    chunks: int = 0
    guard_action: str = "none"
    original_chars: int = 0


SUMMARIZE_CHUNK = LlmStep(
    name="summarize_chunk",
    prompt=PromptTemplate(
        id="document_summary.chunk",
        version="1",
        system="You summarise documents faithfully. Answer with JSON only.",
        user="Summarise part {part} of {parts} of the document {title}.\n\n{chunk}",
    ),
    output=ChunkSummary,
    gate=False,
)

FINAL_SUMMARY = LlmStep(
    name="final_summary",
    prompt=PromptTemplate(
        id="document_summary.final",
        version="1",
        system="You write concise executive summaries. Answer with JSON only.",
        user="Combine these partial summaries of {title} into one summary.\n\n{partials}",
    ),
    output=FinalSummary,
    tier="auto",
    max_output_tokens=800,
)
