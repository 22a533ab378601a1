"""Where review events are announced. Slack implements this; without a token nothing is sent."""

from __future__ import annotations

from typing import Literal, Protocol

from tether.store.reviews import ReviewItem

NudgeKind = Literal["remind", "escalate", "default"]


class ReviewNotifier(Protocol):
    async def review_opened(self, item: ReviewItem) -> tuple[str, str] | None:
        """Announce a new item; return (channel, message ts) when a message was posted."""
        ...

    async def review_decided(self, item: ReviewItem) -> None:
        """Update the announcement with the outcome, whichever front-end decided."""
        ...

    async def review_nudged(self, item: ReviewItem, kind: NudgeKind, channel: str | None) -> None:
        """A timeout fired: remind, escalate to another channel/role, or the default action."""
        ...


class SilentNotifier:
    """Used when no notification channel is configured."""

    async def review_opened(self, item: ReviewItem) -> tuple[str, str] | None:
        return None

    async def review_decided(self, item: ReviewItem) -> None:
        return None

    async def review_nudged(self, item: ReviewItem, kind: NudgeKind, channel: str | None) -> None:
        return None
