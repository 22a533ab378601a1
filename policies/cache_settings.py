"""Settings of the step cache (issue 10, item 3) and of the learned routing rule it feeds."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CachePolicy", "EmbedderKind", "LearnedRoutePolicy"]

EmbedderKind = Literal["provider", "local"]
"""``provider``: the configured provider's ``/v1/embeddings``; ``local``: all-MiniLM-L6-v2 run
in the worker (the ``embeddings`` extra)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LearnedRoutePolicy(_Strict):
    """A step whose nearest past inputs reviewers rejected or edited goes to the strong model."""

    neighbours: int = Field(default=5, ge=1, le=50, description="How many past inputs to ask.")
    min_troubled: int = Field(
        default=3, ge=1, description="How many of them must have been rejected or edited."
    )
    min_similarity: float = Field(
        default=0.5, ge=-1, le=1, description="Past inputs less similar than this do not count."
    )


class CachePolicy(_Strict):
    """Exact and semantic caching of step answers, shared by every worker through the store."""

    enabled: bool = True
    ttl: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    semantic: bool = True
    threshold: float = Field(
        default=0.85,
        ge=0,
        le=1,
        description="Least cosine similarity of two inputs' embeddings for a semantic hit.",
    )
    max_input_chars: int = Field(
        default=8_000, gt=0, description="Inputs longer than this are neither cached nor looked up."
    )
    embedder: EmbedderKind = "local"
    embedding_model: str = Field(
        default="openai/text-embedding-3-small",
        description="With embedder: provider, the provider/model asked for embeddings.",
    )
    verify_reuse: bool = Field(
        default=True,
        description="Before an answer nobody approved is reused for the first time, the step's "
        "judge (when its policy has one) grades it for the input now asking; below "
        "verify_min_score it is not served and is evicted, else it is marked verified.",
    )
    verify_min_score: float = Field(
        default=0.7, ge=0, le=1, description="Least judge score for a first reuse."
    )
    accept_approved: Literal["exact", "similar", "never"] = Field(
        default="exact",
        description="When a cached answer a reviewer approved, or wrote by editing, is accepted "
        "without another review: 'exact', served for the same input only; 'similar', for a "
        "semantic hit too (the answer then reaches other users' paraphrases unseen); 'never'. "
        "Otherwise it passes the confidence gate on its own score like any other.",
    )
    learned_route: LearnedRoutePolicy = LearnedRoutePolicy()
