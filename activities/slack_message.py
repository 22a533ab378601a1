"""The Slack message of a review item, as pure functions: the announcement with its buttons, the
outcome once decided, the note after a timeout, and the threaded nudges.

Nothing here does I/O. ``activities.slack`` posts these blocks; the web layer reads the buttons'
values back with ``parse_button_value`` when a reviewer clicks one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from activities.block_kit import (
    SECTION_TEXT_MAX,
    JsonObject,
    clip,
    escape,
    fallback_text,
    header,
    mrkdwn,
    section,
    slack_date,
)
from tether.store.reviews import ReviewItem

__all__ = [
    "ACTION_APPROVE",
    "ACTION_EDIT",
    "ACTION_REJECT",
    "ButtonValue",
    "message_text",
    "nudge_text",
    "outcome_blocks",
    "parse_button_value",
    "review_blocks",
    "review_url",
    "timed_out_blocks",
]

ACTION_APPROVE = "tether_approve"
ACTION_REJECT = "tether_reject"
ACTION_EDIT = "tether_edit"

_REASONS = {
    "low_confidence": "low confidence",
    "escalated": "escalated: confidence well below the bar",
    "blocked": "blocked by the confidence gate",
    "invalid_output": "the model's output failed its schema",
    "over_budget": "more spend needs approval",
    "provider_failure": "every model failed",
    "audit_sample": "audit of an auto-accepted output",
    "rate_limited": "over a rate limit: go on now?",
    "prompt_injection": "possible prompt injection: the input was held back from the model",
}
_CHANNELS = {
    "web": "the web queue",
    "slack": "Slack",
    "api": "the API",
    "cli": "the CLI",
    "timeout": "the timeout policy",
}
_OUTCOMES = {
    "approve": (":white_check_mark:", "Approved"),
    "reject": (":x:", "Rejected"),
    "edit": (":pencil2:", "Edited and approved"),
    "retry": (":repeat:", "Sent back for a retry"),
}


@dataclass(frozen=True)
class ButtonValue:
    """What a button carries: the item and the digest of the output the message showed."""

    review_id: str
    digest: str


def parse_button_value(raw: str) -> ButtonValue | None:
    """Read a button's (or a modal's private_metadata) value; None when it is not ours."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    review_id, digest = data.get("review_id"), data.get("digest")
    if not isinstance(review_id, str) or not isinstance(digest, str) or not review_id:
        return None
    return ButtonValue(review_id=review_id, digest=digest)


def _button_value(item: ReviewItem) -> str:
    return json.dumps(
        {"review_id": item.review_id, "digest": item.output_digest}, separators=(",", ":")
    )


# --- the review message -------------------------------------------------------------------


def review_url(public_url: str, review_id: str) -> str:
    """The item's page in the web queue (review ids contain ``:`` and so are encoded)."""
    return f"{public_url.rstrip('/')}/reviews/{quote(review_id, safe='')}"


def message_text(item: ReviewItem) -> str:
    """The notification fallback text (shown in push notifications and by screen readers)."""
    return fallback_text(f"Review needed: {item.workflow} / {item.step}: {item.summary}")


def review_blocks(
    item: ReviewItem, public_url: str, *, escalated: bool = False
) -> list[JsonObject]:
    """The message announcing ``item``: what, why, confidence, cost, a link, and the buttons."""
    title = "Escalated review" if escalated else "Review needed"
    blocks: list[JsonObject] = [
        header(f"{title}: {item.workflow} · {item.step}"),
        section(escape(item.summary)),
        {
            "type": "section",
            "fields": [
                mrkdwn(f"*Workflow*\n{escape(item.workflow)}"),
                mrkdwn(f"*Step*\n{escape(item.step)}"),
                mrkdwn(f"*Why*\n{_REASONS.get(item.reason, escape(item.reason))}"),
                mrkdwn(f"*Confidence*\n{_score(item.confidence_score)}"),
                mrkdwn(f"*Cost so far*\n${item.cost_usd:.4f}"),
                mrkdwn(f"*Due*\n{slack_date(item.due_at or item.expires_at)}"),
            ],
        },
    ]
    reasons = _confidence_reasons(item)
    if reasons:
        blocks.append(
            section("*Confidence notes*\n" + "\n".join(f"• {escape(r)}" for r in reasons))
        )
    preview = _output_preview(item.output)
    if preview:
        blocks.append(section(f"*Output*\n{preview}"))
    blocks.append(_link_context(item, public_url))
    buttons = _buttons(item)
    if buttons:
        blocks.append({"type": "actions", "block_id": "tether_review_actions", "elements": buttons})
    return blocks


def _buttons(item: ReviewItem) -> list[JsonObject]:
    value = _button_value(item)
    approval_only = item.reason in ("over_budget", "rate_limited", "prompt_injection")
    no_output = item.reason in ("invalid_output", "provider_failure")
    buttons: list[JsonObject] = []
    if not no_output:
        buttons.append(_button("Approve", ACTION_APPROVE, value, "primary"))
    buttons.append(_button("Reject", ACTION_REJECT, value, "danger"))
    if not approval_only and item.output_schema and item.reason != "provider_failure":
        buttons.append(_button("Edit", ACTION_EDIT, value, None))
    return buttons


def _button(text: str, action_id: str, value: str, style: str | None) -> JsonObject:
    button: JsonObject = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def outcome_blocks(item: ReviewItem, public_url: str) -> list[JsonObject]:
    """The message once decided, whichever front-end decided: who, what, via where; no buttons."""
    emoji, verb = _OUTCOMES.get(item.decision or "", (":grey_question:", item.status.capitalize()))
    via = _CHANNELS.get(item.decided_via or "", item.decided_via or "an unknown channel")
    when = slack_date(item.decided_at) if item.decided_at else "just now"
    line = f"{emoji} *{verb}* by {escape(item.reviewer or 'unknown')} via {via} · {when}"
    if item.decision_reason:
        line += "\n>" + escape(clip(item.decision_reason, 1000)).replace("\n", "\n>")
    return [
        header(f"Reviewed: {item.workflow} · {item.step}"),
        section(escape(item.summary)),
        section(line),
        _link_context(item, public_url),
    ]


def timed_out_blocks(item: ReviewItem, public_url: str) -> list[JsonObject]:
    """The message after the review's time ran out: the buttons go, the policy's default follows."""
    return [
        header(f"Review closed: {item.workflow} · {item.step}"),
        section(escape(item.summary)),
        section(":hourglass: *No decision in time.* The workflow's timeout policy takes over."),
        _link_context(item, public_url),
    ]


def nudge_text(
    item: ReviewItem, kind: Literal["remind", "escalate", "default"], public_url: str
) -> str:
    """The threaded note for a fired timeout."""
    link = f"<{review_url(public_url, item.review_id)}|open it in Tether>"
    if kind == "remind":
        due = slack_date(item.due_at)
        return f":bell: Reminder: this review still needs a decision (due {due}); {link}."
    if kind == "escalate":
        roles = ", ".join(item.allowed_roles) or "the escalation role"
        return f":rotating_light: Escalated: no decision yet; now open to {escape(roles)}; {link}."
    return ":hourglass: No decision in time: the workflow's policy default is being taken."


def _link_context(item: ReviewItem, public_url: str) -> JsonObject:
    url = review_url(public_url, item.review_id)
    return {
        "type": "context",
        "elements": [mrkdwn(f"<{url}|Open in Tether> · run `{escape(item.run_id)}`")],
    }


def _confidence_reasons(item: ReviewItem) -> list[str]:
    reasons = (item.confidence or {}).get("reasons") or []
    return [clip(str(r), 200) for r in reasons[:8]]


def _output_preview(output: JsonObject | None) -> str:
    if not output:
        return ""
    lines = []
    for key, value in output.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"*{escape(key)}*: {escape(clip(shown, 300))}")
    return clip("\n".join(lines), SECTION_TEXT_MAX - 20)


def _score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.2f}"
