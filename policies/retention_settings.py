"""Settings of the retention job: how long dead store rows are kept before a worker prunes them.

What is pruned: cache entries past their expiry (verdict rows the learned routing rule reads are
kept, see ``keep_verdicts``), rate-limit counters and charges of windows that ended long ago.
What is never pruned: the audit log, the ledger, reviews, step events.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RetentionPolicy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetentionPolicy(_Strict):
    """Pruning of dead store rows, run by every worker every ``every`` and by ``tether prune``."""

    enabled: bool = Field(default=True, description="false: workers never prune.")
    every: timedelta = Field(
        default=timedelta(minutes=10),
        gt=timedelta(0),
        description="How often a worker prunes (the first time one interval after it starts).",
    )
    keep_verdicts: int = Field(
        default=5_000,
        ge=5_000,
        description="Dead cache entries with a reviewer's verdict and an embedding kept per "
        "workflow step (and embedder), newest first: the learned routing rule reads the newest "
        "5,000, so fewer would change its decisions.",
    )
    verdict_max_age: timedelta = Field(
        default=timedelta(days=365),
        gt=timedelta(0),
        description="Dead cache entries with a verdict older than this go even within "
        "keep_verdicts.",
    )
    limit_window_grace: timedelta = Field(
        default=timedelta(days=1),
        ge=timedelta(hours=1),
        description="Rate-limit counters and charges are deleted this long after their window "
        "ended (a retried step within it is still counted once).",
    )
    batch_rows: int = Field(
        default=1_000,
        ge=10,
        le=50_000,
        description="Rows deleted per transaction, so no prune holds a lock for long.",
    )
    max_batches: int = Field(
        default=100,
        ge=1,
        description="Batches per table per prune; the rest waits for the next prune.",
    )
