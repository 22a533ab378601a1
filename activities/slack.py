"""Review escalations in Slack through slack-sdk: the ``ReviewNotifier`` the worker uses when
``SLACK_BOT_TOKEN`` is set.

A Slack outage must never fail a run: API and network failures are logged (method, review id and
Slack's error code only, never text) and the run carries on; the web queue still has the item.
Programming errors are not caught, so they surface as failed activities.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from activities.block_kit import fallback_text
from activities.notify import NudgeKind, ReviewNotifier, SilentNotifier
from activities.slack_message import (
    message_text,
    nudge_text,
    outcome_blocks,
    review_blocks,
    timed_out_blocks,
)
from tether.core.settings import Settings
from tether.store.reviews import ReviewItem

__all__ = [
    "SLACK_FAILURES",
    "SlackNotifier",
    "notifier_from_settings",
    "slack_client",
    "slack_error",
]

log = logging.getLogger(__name__)

SLACK_FAILURES: tuple[type[BaseException], ...] = (
    SlackApiError,  # Slack answered ok: false (invalid_auth, channel_not_found, ...)
    SlackClientError,  # the SDK could not make the call
    aiohttp.ClientError,  # connection refused, reset, bad HTTP
    TimeoutError,
)
"""What a Slack call may fail with when Slack, not our code, is the problem."""

_TIMEOUT_S = 10


def slack_client(settings: Settings) -> AsyncWebClient | None:
    """A Web API client for the bot token at ``settings.slack_api_url``; None without a token."""
    if settings.slack_bot_token is None:
        return None
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=_TIMEOUT_S,
        # One retry on a dropped connection and on a 429 (after its Retry-After): enough for a
        # blip, short enough to stay well inside the activity's timeout.
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
        ],
    )


def notifier_from_settings(settings: Settings) -> ReviewNotifier:
    """Slack when ``SLACK_BOT_TOKEN`` is set; otherwise a silent notifier and one log line."""
    client = slack_client(settings)
    if client is None:
        log.warning("Slack is off: SLACK_BOT_TOKEN is not set")
        return SilentNotifier()
    return SlackNotifier(settings, client=client)


class SlackNotifier:
    """Posts one Block Kit message per review item and keeps it up to date.

    Args:
        settings: Supplies the token, API URL and the public URL used for item links.
        client: The Web API client; made from ``settings`` when omitted.
    """

    def __init__(self, settings: Settings, *, client: AsyncWebClient | None = None) -> None:
        made = client or slack_client(settings)
        if made is None:
            raise ValueError("SlackNotifier needs SLACK_BOT_TOKEN; use notifier_from_settings")
        self.client = made
        self.public_url = settings.public_url
        self.default_channel = settings.slack_default_channel

    async def review_opened(self, item: ReviewItem) -> tuple[str, str] | None:
        """Post the item's message with its buttons; return (channel id, ts), or None on failure."""
        channel = item.slack_channel or self.default_channel
        try:
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message_text(item),
                blocks=review_blocks(item, self.public_url),
                unfurl_links=False,
            )
        except SLACK_FAILURES as exc:
            _log_failure("chat.postMessage", item, exc)
            return None
        # Slack answers with the channel's id; chat.update needs the id, not the #name.
        return str(response["channel"]), str(response["ts"])

    async def review_decided(self, item: ReviewItem) -> None:
        """Replace the message with the outcome (who, what, via which front-end); no buttons."""
        if not (item.slack_channel and item.slack_ts):
            return
        verb = item.decision or item.status
        await self._update(item, fallback_text(f"Reviewed ({verb}): {item.workflow} / {item.step}"),
                           outcome_blocks(item, self.public_url))  # fmt: skip

    async def review_nudged(self, item: ReviewItem, kind: NudgeKind, channel: str | None) -> None:
        """Reply in the item's thread; an escalation with a channel also posts the item there."""
        text = nudge_text(item, kind, self.public_url)
        if item.slack_channel and item.slack_ts:
            await self._post(item, channel=item.slack_channel, text=text, thread_ts=item.slack_ts)
        if kind == "escalate" and channel and channel != item.slack_channel:
            await self._post(
                item,
                channel=channel,
                text="Escalated: " + message_text(item),
                blocks=review_blocks(item, self.public_url, escalated=True),
            )
        elif kind == "escalate" and not item.slack_ts:
            # Never announced (Slack was down then): the escalation is the first message.
            await self._post(
                item,
                channel=item.slack_channel or self.default_channel,
                text="Escalated: " + message_text(item),
                blocks=review_blocks(item, self.public_url, escalated=True),
            )
        if kind == "default" and item.slack_channel and item.slack_ts:
            # The buttons can no longer decide anything; the outcome replaces this if one follows.
            await self._update(item, fallback_text(f"Review closed: {item.workflow} / {item.step}"),
                               timed_out_blocks(item, self.public_url))  # fmt: skip

    async def _post(
        self,
        item: ReviewItem,
        *,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        blocks: list[dict[str, object]] | None = None,
    ) -> None:
        try:
            await self.client.chat_postMessage(
                channel=channel, text=text, thread_ts=thread_ts, blocks=blocks, unfurl_links=False
            )
        except SLACK_FAILURES as exc:
            _log_failure("chat.postMessage", item, exc)

    async def _update(self, item: ReviewItem, text: str, blocks: list[dict[str, object]]) -> None:
        assert item.slack_channel and item.slack_ts
        try:
            await self.client.chat_update(
                channel=item.slack_channel, ts=item.slack_ts, text=text, blocks=blocks
            )
        except SLACK_FAILURES as exc:
            _log_failure("chat.update", item, exc)


def _log_failure(method: str, item: ReviewItem, exc: BaseException) -> None:
    log.warning("Slack %s failed for review %s: %s", method, item.review_id, slack_error(exc))


def slack_error(exc: BaseException) -> str:
    """What a failed Slack call says went wrong, fit for the log: Slack's error code and, for
    ``invalid_blocks`` and the like, its ``response_metadata.messages`` (which name the limit
    and the JSON pointer of the offending block, never its text). The exception's own text
    could echo message content and is not used."""
    if not isinstance(exc, SlackApiError):
        return type(exc).__name__
    response = exc.response
    why = str(response.get("error", "unknown_error"))
    metadata = response.get("response_metadata") or {}
    messages = metadata.get("messages") if isinstance(metadata, dict) else None
    if messages:
        why += " (" + "; ".join(str(m)[:300] for m in list(messages)[:10]) + ")"
    return why
