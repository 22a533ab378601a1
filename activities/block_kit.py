"""Block Kit text pieces held to Slack's documented limits (a longer text fails the whole call
with ``invalid_blocks``), shared by the review message and the web layer's modals."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]

SECTION_TEXT_MAX = 3000
HEADER_MAX = 150
BLOCK_ID_MAX = 255
FALLBACK_TEXT_MAX = 300
"""Our own cap for a message's notification text (Slack truncates at 40,000)."""


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_text(text: str) -> str:
    """A message's top-level ``text`` (notifications, screen readers): escaped like the blocks,
    so model output cannot ping ``<!channel>`` or forge a link there either."""
    return escape(clip(text, FALLBACK_TEXT_MAX))


def block_id(name: str) -> str:
    """``name`` as a block id: itself when within Slack's 255 characters, else a shortened
    form that keeps its start and stays unique (a digest of the whole name)."""
    if len(name) <= BLOCK_ID_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"{name[: BLOCK_ID_MAX - len(digest) - 1]}~{digest}"


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
