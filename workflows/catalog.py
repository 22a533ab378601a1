"""Every workflow the worker runs and the CLI/API can start, with its input model."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from workflows.document_summary import DocumentSummary
from workflows.document_summary_steps import Document
from workflows.support_triage import SupportTriage
from workflows.support_triage_steps import Ticket


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    workflow: type
    input_model: type[BaseModel]
    description: str


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry("support_triage", SupportTriage, Ticket, "classify, extract, draft a reply"),
        CatalogEntry(
            "document_summary", DocumentSummary, Document, "chunk summaries -> final summary"
        ),
    )
}
