"""``POST /slack/interactions``: Approve / Reject / Edit clicks and modal submissions from Slack.

Every request is checked in order — a signing secret is configured, the signature over the raw
body is Slack's, the timestamp is fresh, the request was not seen before — then answered at once:
Slack gives up after 3 s, so decisions go to the workflow in a background task after the
acknowledgement. Only a modal's field errors are answered synchronously, as Slack requires.

The Slack user is mapped to a reviewer through ``policy.reviewers[].slack_user_id``; the
workflow's ``decide`` validator remains the authority on roles, digests and first-decision-wins.
Refusals are told to the user ephemerally and change nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from activities.slack import SLACK_FAILURES, slack_client
from policies.effective import reviewer_by_slack_id
from policies.models import Reviewer
from review_ui.context import Desk, ReviewDesk
from review_ui.deciding import DecisionRequest, decide, may_decide
from review_ui.decisions import decision_update_id
from review_ui.slack_blocks import (
    ACTION_APPROVE,
    ACTION_EDIT,
    ACTION_REJECT,
    EDIT_CALLBACK,
    REJECT_CALLBACK,
    REJECT_REASON_BLOCK,
    ButtonValue,
    edit_modal,
    parse_button_value,
    parse_edit_submission,
    reject_modal,
)
from tether.store.engine import session_scope
from tether.store.reviews import ReviewItem, get_review

__all__ = ["SIGNATURE_WINDOW_S", "router", "signature_problem"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["slack"])

SIGNATURE_WINDOW_S = 300
"""Slack's replay window: a request signed longer ago than this is refused."""
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def signature_problem(
    body: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None
) -> str | None:
    """Why this request is not a fresh one signed by Slack, or None when it is.

    Slack signs ``v0:{X-Slack-Request-Timestamp}:{raw body}`` with HMAC-SHA256 keyed by the
    app's signing secret and sends ``v0=<hex>`` as ``X-Slack-Signature``.
    """
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    if not timestamp.isdigit() or len(timestamp) > 12 or not _SIGNATURE.match(signature):
        return "malformed X-Slack-Request-Timestamp or X-Slack-Signature"
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SIGNATURE_WINDOW_S:
        return "the request timestamp is more than 5 minutes from now"
    expected = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    if expected is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        return "the signature does not match"
    return None


class _SeenSignatures:
    """Signatures accepted within the replay window: the same signed request is taken once."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_time(self, signature: str, now: float) -> bool:
        if len(self._seen) > 1000:
            self._seen = {s: t for s, t in self._seen.items() if t > now - 2 * SIGNATURE_WINDOW_S}
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True


def _seen_signatures(request: Request) -> _SeenSignatures:
    seen = getattr(request.app.state, "slack_seen_signatures", None)
    if seen is None:
        seen = request.app.state.slack_seen_signatures = _SeenSignatures()
    return seen


@router.post("/slack/interactions", summary="Slack interactivity (signed by Slack)")
async def slack_interactions(request: Request, desk: Desk, background: BackgroundTasks) -> Response:
    """Take a button click or modal submission from Slack; acknowledge, then act."""
    body = await request.body()
    secret = desk.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value():
        return _problem(503, "Slack interactions are off: SLACK_SIGNING_SECRET is not set")
    problem = signature_problem(body, request.headers, secret.get_secret_value())
    if problem:
        log.warning("refused a Slack request: %s", problem)
        return _problem(401, f"not a valid Slack request: {problem}")
    if not _seen_signatures(request).first_time(request.headers["x-slack-signature"], time.time()):
        log.warning("refused a replayed Slack request")
        return _problem(409, "this Slack request was already received")
    payload = _payload(body)
    if payload is None:
        return _problem(400, "the body has no JSON payload field")
    kind = payload.get("type")
    if kind == "block_actions":
        _on_block_action(desk, payload, background)
        return Response(status_code=200)
    if kind == "view_submission":
        return await _on_view_submission(desk, payload, background)
    return Response(status_code=200)  # view_closed, shortcuts...: nothing to do


# --- clicks -------------------------------------------------------------------------------


def _on_block_action(
    desk: ReviewDesk, payload: dict[str, Any], background: BackgroundTasks
) -> None:
    actions = payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    action_id = action.get("action_id")
    if action_id not in (ACTION_APPROVE, ACTION_REJECT, ACTION_EDIT):
        return
    value = parse_button_value(str(action.get("value", "")))
    if value is None:
        return
    user_id = str((payload.get("user") or {}).get("id", ""))
    reply = _Reply(desk, user_id, response_url=payload.get("response_url"))
    reviewer = reviewer_by_slack_id(desk.policy, user_id) if user_id else None
    if reviewer is None:
        background.add_task(reply.send, "You are not a Tether reviewer, so nothing was changed. "
                            "Ask an admin to add your Slack user id to the reviewers in the "
                            "policy.")  # fmt: skip
        return
    if action_id == ACTION_APPROVE:
        nonce = f"slack:{user_id}:{action.get('action_ts', '')}"
        background.add_task(_decide, desk, reply, reviewer, value, "approve", nonce, {})
    else:
        trigger_id = str(payload.get("trigger_id", ""))
        modal: Literal["edit", "reject"] = "edit" if action_id == ACTION_EDIT else "reject"
        background.add_task(_open_modal, desk, reply, reviewer, value, modal, trigger_id)


async def _open_modal(
    desk: ReviewDesk,
    reply: _Reply,
    reviewer: Reviewer,
    value: ButtonValue,
    modal: Literal["edit", "reject"],
    trigger_id: str,
) -> None:
    item = await _load(desk, value.review_id)
    refusal = _refusal(item, reviewer, value)
    if refusal is not None or item is None:
        await reply.send(refusal or "unknown review")
        return
    client = slack_client(desk.settings)
    if client is None:
        await reply.send("Editing in Slack needs SLACK_BOT_TOKEN; use the link to the web page.")
        return
    view = edit_modal(item, value.digest) if modal == "edit" else reject_modal(item, value.digest)
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SLACK_FAILURES as exc:
        log.warning("Slack views.open failed for review %s: %s", item.review_id, _code(exc))
        await reply.send(
            "Slack could not open the form; try again or use the link to the web page."
        )


# --- modal submissions --------------------------------------------------------------------


async def _on_view_submission(
    desk: ReviewDesk, payload: dict[str, Any], background: BackgroundTasks
) -> Response:
    view = payload.get("view") or {}
    callback = view.get("callback_id")
    if callback not in (EDIT_CALLBACK, REJECT_CALLBACK):
        return Response(status_code=200)
    value = parse_button_value(str(view.get("private_metadata", "")))
    if value is None:
        return Response(status_code=200)
    values = (view.get("state") or {}).get("values") or {}
    first_block = next(iter(values), REJECT_REASON_BLOCK)
    user_id = str((payload.get("user") or {}).get("id", ""))
    reviewer = reviewer_by_slack_id(desk.policy, user_id) if user_id else None
    if reviewer is None:
        return _field_errors({first_block: "You are not a Tether reviewer; nothing was changed."})
    item = await _load(desk, value.review_id)
    refusal = _refusal(item, reviewer, value)
    if refusal is not None or item is None:
        return _field_errors({first_block: (refusal or "unknown review")[:150]})
    reply = _Reply(desk, user_id, channel=item.slack_channel)
    nonce = f"slack:{view.get('id', '')}:{view.get('hash', '')}"
    if callback == REJECT_CALLBACK:
        reason = str(
            ((values.get(REJECT_REASON_BLOCK) or {}).get("value") or {}).get("value") or ""
        )
        if not reason.strip():
            return _field_errors({REJECT_REASON_BLOCK: "A rejection needs a reason."})
        background.add_task(
            _decide, desk, reply, reviewer, value, "reject", nonce, {"reason": reason.strip()}
        )
        return Response(status_code=200)
    edited, errors = await asyncio.to_thread(parse_edit_submission, item, values)
    if errors:
        return _field_errors(errors)
    background.add_task(
        _decide, desk, reply, reviewer, value, "edit", nonce, {"edited_output": edited}
    )
    return Response(status_code=200)


# --- deciding -----------------------------------------------------------------------------


async def _decide(
    desk: ReviewDesk,
    reply: _Reply,
    reviewer: Reviewer,
    value: ButtonValue,
    kind: Literal["approve", "reject", "edit"],
    nonce: str,
    extra: dict[str, Any],
) -> None:
    item = await _load(desk, value.review_id)
    refusal = _refusal(item, reviewer, value)
    if refusal is not None or item is None:
        await reply.send(refusal or "unknown review")
        return
    request = DecisionRequest(kind=kind, output_digest=value.digest, **extra)
    update_id = decision_update_id(item.review_id, nonce)
    outcome = await decide(desk, reviewer, item, request, channel="slack", update_id=update_id)
    log.info("Slack %s of review %s by %s: %s", kind, item.review_id, reviewer.name, outcome.state)
    if not outcome.accepted:
        # An accepted decision shows up as the updated message; anything else is told to the user.
        await reply.send(outcome.message)


def _refusal(item: ReviewItem | None, reviewer: Reviewer, value: ButtonValue) -> str | None:
    """Why ``reviewer`` cannot decide ``item`` now, checked before any form or update."""
    if item is None:
        return "This review no longer exists in Tether; nothing was changed."
    problem = may_decide(reviewer, item)
    if problem is not None:
        return f"Nothing was changed: {problem}."
    if value.digest != item.output_digest:
        return "This message shows an older output (stale digest); open the item in Tether."
    expires_at = item.expires_at if item.expires_at.tzinfo else item.expires_at.replace(tzinfo=UTC)
    if datetime.now(UTC) >= expires_at:
        return "This review has expired; nothing was changed."
    return None


async def _load(desk: ReviewDesk, review_id: str) -> ReviewItem | None:
    def read() -> ReviewItem | None:
        with session_scope(desk.database_url) as session:
            return get_review(session, review_id)

    return await asyncio.to_thread(read)


# --- answering the user -------------------------------------------------------------------


class _Reply:
    """Tells one Slack user something only they see: through the click's response_url, or an
    ephemeral message in the item's channel after a modal (which has no response_url)."""

    def __init__(
        self,
        desk: ReviewDesk,
        user_id: str,
        *,
        response_url: str | None = None,
        channel: str | None = None,
    ) -> None:
        self.desk, self.user_id = desk, user_id
        self.response_url, self.channel = response_url, channel

    async def send(self, text: str) -> None:
        try:
            if self.response_url:
                webhook = AsyncWebhookClient(self.response_url, timeout=10)
                answer = await webhook.send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                if answer.status_code != 200:  # response_urls expire after 30 min / 5 uses
                    log.warning("Slack response_url answered %s", answer.status_code)
                return
            client = slack_client(self.desk.settings)
            if client is not None and self.channel and self.user_id:
                await client.chat_postEphemeral(channel=self.channel, user=self.user_id, text=text)
        except SLACK_FAILURES as exc:
            log.warning("could not tell a Slack user about their decision: %s", _code(exc))


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        fields = parse_qs(body.decode(), strict_parsing=False)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _field_errors(errors: dict[str, str]) -> JSONResponse:
    return JSONResponse({"response_action": "errors", "errors": errors})


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "get"):
        return str(response.get("error", type(exc).__name__))
    return type(exc).__name__
