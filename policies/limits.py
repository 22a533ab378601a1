"""Rate limits and quotas per end user and tenant, and request caps per provider.

Plain data validated by pydantic plus the pure rule that applies it: given what each window has
counted so far, may one more step (one request, its estimated tokens) go now, and if not, which
limit is full and when its window resets. Counting lives in ``tether.store.limits``.

Windows are fixed (a minute window runs from :00 to :59), counted in the store so every worker
shares them. A fixed window can let up to twice its limit through around a boundary (the end of
one window and the start of the next); size limits with that in mind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "LimitBreach",
    "LimitOutcome",
    "LimitScope",
    "LimitWindow",
    "LimitsPolicy",
    "ProviderCap",
    "WindowCount",
    "first_breach",
    "window_start",
]

LimitOutcome = Literal["wait", "refuse", "review"]
"""What a step over a user's or tenant's limit does: ``wait`` until the window resets (a durable
timer in the workflow), ``refuse`` (the run ends with status ``rate_limited``), ``review`` (a
human approves going on now, or rejects and the run ends)."""

LimitScope = Literal["user", "tenant", "provider"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitWindow(_Strict):
    """At most ``requests`` steps and ``tokens`` tokens in each window of ``seconds``."""

    seconds: int = Field(gt=0, le=31 * 86_400, description="60: per minute, 86400: per day.")
    requests: int | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _limits_something(self) -> LimitWindow:
        if self.requests is None and self.tokens is None:
            raise ValueError("a window limits requests, tokens or both")
        return self

    def describe(self) -> str:
        parts = [f"{self.requests} requests"] if self.requests is not None else []
        if self.tokens is not None:
            parts.append(f"{self.tokens} tokens")
        return f"{' and '.join(parts)} per {_span(self.seconds)}"


class ProviderCap(_Strict):
    """What the provider account allows, shared by every worker and run."""

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    window_seconds: int = Field(
        default=60,
        gt=0,
        le=60,
        description="The window the caps are counted in, scaled to it: a shorter one spreads "
        "a burst over the minute instead of letting it all through at its start.",
    )

    def window(self) -> LimitWindow | None:
        """The caps as one window of ``window_seconds`` (at least one request per window)."""
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            return None
        share = self.window_seconds / 60
        return LimitWindow(
            seconds=self.window_seconds,
            requests=_scaled(self.requests_per_minute, share),
            tokens=_scaled(self.tokens_per_minute, share),
        )


class LimitsPolicy(_Strict):
    """Rate limits and quotas (``limits`` in the policy file; per workflow under ``workflows``)."""

    enabled: bool = True
    per_user: list[LimitWindow] = Field(
        default_factory=list, description="Windows each end user of a tenant is held to."
    )
    per_tenant: list[LimitWindow] = Field(
        default_factory=list, description="Windows each tenant is held to, all users together."
    )
    on_exceed: LimitOutcome = "wait"
    providers: dict[str, ProviderCap] = Field(
        default_factory=dict,
        description="Provider name (the part before '/' in a model id) -> its request caps. A "
        "step whose model's provider is at its cap waits (durably) for the next minute.",
    )


@dataclass(frozen=True)
class WindowCount:
    """One window of one scope, as the store counted it before this step."""

    scope: LimitScope
    subject: str
    """Who the window counts: the user, the tenant or the provider."""
    window: LimitWindow
    started_at: float
    """The window's start, in seconds since the epoch."""
    requests: int
    tokens: int


@dataclass(frozen=True)
class LimitBreach:
    """The full window that holds a step back."""

    scope: LimitScope
    subject: str
    window: LimitWindow
    resets_at: float
    """When the window ends, in seconds since the epoch."""

    def describe(self) -> str:
        return f"{self.scope} {self.subject}: {self.window.describe()}"


def window_start(now: float, seconds: int) -> float:
    """The start of the fixed window of ``seconds`` that ``now`` falls in."""
    return float(int(now // seconds) * seconds)


def first_breach(
    counts: Sequence[WindowCount], tokens: int, provider_calls: int = 1
) -> LimitBreach | None:
    """The window one more step would overfill, the one that resets last when several would
    (waiting for an earlier one would only be refused again).

    A step counts one request against its user's and tenant's windows, and ``provider_calls``
    requests (its samples and judge too) against its provider's. An empty window takes any one
    step, however large, so a step bigger than a window is never held back for ever.
    """
    full = [
        LimitBreach(c.scope, c.subject, c.window, c.started_at + c.window.seconds)
        for c in counts
        if (c.requests or c.tokens)
        and (
            (
                c.window.requests is not None
                and c.requests + _calls(c, provider_calls) > c.window.requests
            )
            or (c.window.tokens is not None and c.tokens + tokens > c.window.tokens)
        )
    ]
    return max(full, key=lambda b: b.resets_at) if full else None


def _calls(count: WindowCount, provider_calls: int) -> int:
    return provider_calls if count.scope == "provider" else 1


def _scaled(per_minute: int | None, share: float) -> int | None:
    return None if per_minute is None else max(1, int(per_minute * share))


def _span(seconds: int) -> str:
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"
