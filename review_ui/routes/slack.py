"""``POST /slack/interactions``: Approve / Reject / Edit clicks and modal submissions from Slack.

``review_ui.slack_verification`` checks every request before the handler runs (signing secret,
signature, freshness, replay across replicas). A decision is checked and written to the outbox
(``DecisionIntent``) before Slack is acknowledged, so an acknowledged click is never lost; Slack
gives up after 3 s, so it is sent to the workflow in a background task after the
acknowledgement (and by the outbox's redelivery loop if this process dies first). Only a
modal's field errors are answered synchronously, as Slack requires. Clicks are dispatched by action id
and submissions by the modal's callback id, through the tables at the end of this module.

The Slack user is mapped to a reviewer through ``policy.reviewers[].slack_user_id``; the
workflow's ``decide`` validator remains the authority on roles, digests and first-decision-wins.
Refusals are told to the user ephemerally and change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Response
from fastapi.responses import JSONResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from activities.slack import SLACK_FAILURES, slack_client, slack_error
from activities.slack_message import (
    ACTION_APPROVE,
    ACTION_EDIT,
    ACTION_REJECT,
    ButtonValue,
    parse_button_value,
)
from policies.effective import reviewer_by_slack_id
from policies.models import Reviewer
from review_ui.context import ReviewDesk
from review_ui.deciding import DecisionRequest, decide, decision_for, may_decide
from review_ui.decisions import DELIVERY_TIMEOUT, decision_update_id
from review_ui.deps import Desk, SessionDep, read_apart
from review_ui.errors import error_responses
from review_ui.slack_modals import (
    EDIT_CALLBACK,
    REJECT_CALLBACK,
    REJECT_REASON_BLOCK,
    edit_modal,
    parse_edit_submission,
    reject_modal,
)
from review_ui.slack_verification import SlackPayload
from tether.contracts import JsonObject
from tether.store.engine import Session, session_scope
from tether.store.outbox import write_intent
from tether.store.reviews import ReviewItem, get_review

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["slack"])


@dataclass(frozen=True)
class _Interaction:
    """One verified request from Slack, with what its handler may use."""

    desk: ReviewDesk
    payload: JsonObject
    background: BackgroundTasks
    session: Session

    @property
    def user_id(self) -> str:
        return str((self.payload.get("user") or {}).get("id", ""))

    def reviewer(self) -> Reviewer | None:
        return reviewer_by_slack_id(self.desk.policy, self.user_id) if self.user_id else None


@router.post(
    "/slack/interactions",
    summary="Slack interactivity (signed by Slack)",
    responses=error_responses(400, 401, 409, 413, 503),
)
async def slack_interactions(
    payload: SlackPayload, desk: Desk, session: SessionDep, background: BackgroundTasks
) -> Response:
    """Take a button click or modal submission from Slack; acknowledge, then act."""
    handler = _BY_TYPE.get(str(payload.get("type")))
    if handler is None:
        return Response(status_code=200)  # view_closed, shortcuts...: nothing to do
    return await handler(_Interaction(desk, payload, background, session))


# --- clicks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Click:
    """A button clicked by a reviewer, on a message of ours."""

    interaction: _Interaction
    action: JsonObject
    value: ButtonValue
    reviewer: Reviewer
    reply: _Reply


async def _on_block_action(interaction: _Interaction) -> Response:
    actions = interaction.payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    on_click = _CLICKS.get(str(action.get("action_id")))
    value = parse_button_value(str(action.get("value", "")))
    if on_click is None or value is None:
        return Response(status_code=200)
    reply = _Reply(interaction.desk, interaction.user_id,
                   response_url=interaction.payload.get("response_url"))  # fmt: skip
    reviewer = interaction.reviewer()
    if reviewer is None:
        interaction.background.add_task(reply.send, "You are not a Tether reviewer, so nothing "
                                        "was changed. Ask an admin to add your Slack user id to "
                                        "the reviewers in the policy.")  # fmt: skip
    else:
        await on_click(_Click(interaction, action, value, reviewer, reply))
    return Response(status_code=200)


async def _approve(click: _Click) -> None:
    interaction = click.interaction
    item = await read_apart(interaction.session, get_review, click.value.review_id)
    refusal = _refusal(item, click.reviewer, click.value)
    if refusal is not None or item is None:
        interaction.background.add_task(click.reply.send, refusal or "unknown review")
        return
    nonce = f"slack:{interaction.user_id}:{click.action.get('action_ts', '')}"
    await _decide_then_deliver(interaction, click.reply, click.reviewer, item, click.value,
                               "approve", nonce, {})  # fmt: skip


def _modal_opener(modal: Literal["edit", "reject"]) -> Callable[[_Click], Awaitable[None]]:
    async def open_later(click: _Click) -> None:
        trigger_id = str(click.interaction.payload.get("trigger_id", ""))
        click.interaction.background.add_task(
            _open_modal, click.interaction.desk, click.reply, click.reviewer, click.value, modal,
            trigger_id,
        )  # fmt: skip

    return open_later


async def _open_modal(
    desk: ReviewDesk,
    reply: _Reply,
    reviewer: Reviewer,
    value: ButtonValue,
    modal: Literal["edit", "reject"],
    trigger_id: str,
) -> None:
    item = await _still_decidable(desk, reply, reviewer, value)
    if item is None:
        return
    client = slack_client(desk.settings)
    if client is None:
        await reply.send("Editing in Slack needs SLACK_BOT_TOKEN; use the link to the web page.")
        return
    view = edit_modal(item, value.digest) if modal == "edit" else reject_modal(item, value.digest)
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SLACK_FAILURES as exc:
        log.warning("Slack views.open failed for review %s: %s", item.review_id, slack_error(exc))
        await reply.send(
            "Slack could not open the form; try again or use the link to the web page."
        )


# --- modal submissions --------------------------------------------------------------------


@dataclass(frozen=True)
class _Submission:
    """A modal submitted by a reviewer who may decide the item it shows."""

    interaction: _Interaction
    reviewer: Reviewer
    item: ReviewItem
    value: ButtonValue
    values: JsonObject
    reply: _Reply
    nonce: str

    async def decide_later(
        self, kind: Literal["reject", "edit"], extra: dict[str, Any]
    ) -> Response:
        await _decide_then_deliver(self.interaction, self.reply, self.reviewer, self.item,
                                   self.value, kind, self.nonce, extra)  # fmt: skip
        return Response(status_code=200)


async def _on_view_submission(interaction: _Interaction) -> Response:
    view = interaction.payload.get("view") or {}
    on_submit = _SUBMISSIONS.get(str(view.get("callback_id")))
    value = parse_button_value(str(view.get("private_metadata", "")))
    if on_submit is None or value is None:
        return Response(status_code=200)
    values = (view.get("state") or {}).get("values") or {}
    first_block = next(iter(values), REJECT_REASON_BLOCK)
    reviewer = interaction.reviewer()
    if reviewer is None:
        return _field_errors({first_block: "You are not a Tether reviewer; nothing was changed."})
    item = await read_apart(interaction.session, get_review, value.review_id)
    refusal = _refusal(item, reviewer, value)
    if refusal is not None or item is None:
        return _field_errors({first_block: (refusal or "unknown review")[:150]})
    reply = _Reply(interaction.desk, interaction.user_id, channel=item.slack_channel)
    nonce = f"slack:{view.get('id', '')}:{view.get('hash', '')}"
    return await on_submit(_Submission(interaction, reviewer, item, value, values, reply, nonce))


async def _submit_reject(submission: _Submission) -> Response:
    reason = str(
        ((submission.values.get(REJECT_REASON_BLOCK) or {}).get("value") or {}).get("value") or ""
    )
    if not reason.strip():
        return _field_errors({REJECT_REASON_BLOCK: "A rejection needs a reason."})
    return await submission.decide_later("reject", {"reason": reason.strip()})


async def _submit_edit(submission: _Submission) -> Response:
    edited, errors = await asyncio.to_thread(
        parse_edit_submission, submission.item, submission.values
    )
    if errors:
        return _field_errors(errors)
    return await submission.decide_later("edit", {"edited_output": edited})


# --- deciding -----------------------------------------------------------------------------


async def _decide_then_deliver(
    interaction: _Interaction,
    reply: _Reply,
    reviewer: Reviewer,
    item: ReviewItem,
    value: ButtonValue,
    kind: Literal["approve", "reject", "edit"],
    nonce: str,
    extra: dict[str, Any],
) -> None:
    """Write the decision to the outbox now (before Slack is acknowledged), send it later."""
    request = DecisionRequest(kind=kind, output_digest=value.digest, **extra)
    update_id = decision_update_id(item.review_id, nonce)
    decision = decision_for(reviewer, item, request, channel="slack")
    desk = interaction.desk

    def write() -> None:
        with session_scope(desk.database_url) as session:
            write_intent(session, update_id, decision, item.run_id,
                         first_attempt_for=DELIVERY_TIMEOUT)  # fmt: skip

    await asyncio.to_thread(write)
    interaction.background.add_task(_deliver, desk, reply, reviewer, item, request, update_id)


async def _deliver(
    desk: ReviewDesk,
    reply: _Reply,
    reviewer: Reviewer,
    item: ReviewItem,
    request: DecisionRequest,
    update_id: str,
) -> None:
    # The intent is in the outbox: decide() finds it and delivers it (or its first outcome).
    outcome = await decide(desk, reviewer, item, request, channel="slack", update_id=update_id)
    log.info(
        "Slack %s of review %s by %s: %s", request.kind, item.review_id, reviewer.name,
        outcome.state,
    )  # fmt: skip
    if not outcome.accepted:
        # An accepted decision shows up as the updated message; anything else is told to the user.
        await reply.send(outcome.message)


async def _still_decidable(
    desk: ReviewDesk, reply: _Reply, reviewer: Reviewer, value: ButtonValue
) -> ReviewItem | None:
    """The item, read again when the background work starts; None (and the user told) if
    ``reviewer`` can no longer decide it."""
    item = await _load(desk, value.review_id)
    refusal = _refusal(item, reviewer, value)
    if refusal is not None or item is None:
        await reply.send(refusal or "unknown review")
        return None
    return item


def _refusal(item: ReviewItem | None, reviewer: Reviewer, value: ButtonValue) -> str | None:
    """Why ``reviewer`` cannot decide ``item`` now, checked before any form or update."""
    if item is None or not reviewer.sees_tenant(item.tenant):  # another tenant's: as if absent
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
    # Background tasks run after the response, when the request's session is gone.
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
            log.warning("could not tell a Slack user about their decision: %s", slack_error(exc))


def _field_errors(errors: dict[str, str]) -> JSONResponse:
    return JSONResponse({"response_action": "errors", "errors": errors})


# --- dispatch -----------------------------------------------------------------------------

_BY_TYPE: dict[str, Callable[[_Interaction], Awaitable[Response]]] = {
    "block_actions": _on_block_action,
    "view_submission": _on_view_submission,
}
_CLICKS: dict[str, Callable[[_Click], Awaitable[None]]] = {
    ACTION_APPROVE: _approve,
    ACTION_EDIT: _modal_opener("edit"),
    ACTION_REJECT: _modal_opener("reject"),
}
_SUBMISSIONS: dict[str, Callable[[_Submission], Awaitable[Response]]] = {
    EDIT_CALLBACK: _submit_edit,
    REJECT_CALLBACK: _submit_reject,
}
