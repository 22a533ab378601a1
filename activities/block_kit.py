"""Block Kit text pieces held to Slack's documented limits (a longer text fails the whole call
with ``invalid_blocks``), shared by the review message and the web layer's modals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]

SECTION_TEXT_MAX = 3000
HEADER_MAX = 150


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> JsonObject:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX)}}


def section(text: str) -> JsonObject:
    return {"type": "section", "text": mrkdwn(clip(text, SECTION_TEXT_MAX))}


def mrkdwn(text: str) -> JsonObject:
    return {"type": "mrkdwn", "text": text}


def slack_date(when: datetime | None) -> str:
    """A date Slack shows in each reader's own time zone (with a UTC fallback text)."""
    if when is None:
        return "no due time"
    if when.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
        when = when.replace(tzinfo=UTC)
    stamp = int(when.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when.isoformat(timespec='minutes')}>"
