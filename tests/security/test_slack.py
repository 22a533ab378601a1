"""Slack, tried as an attacker would (issue 9, item 8): a captured signed click replayed to
another replica or after a restart, and an acknowledged click that must not be lost."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from activities.slack import SlackNotifier
from activities.slack_message import message_text
from review_ui.app import create_app
from review_ui.slack_modals import edit_modal, parse_edit_submission
from tests.fakes.slack_api import (
    FakeSlack,
    block_problems,
    interaction_body,
    signed_headers,
    view_problems,
)
from tests.review_ui.test_slack import (  # noqa: F401  (fixtures)
    ALICE,
    BOB,
    QUESTION,
    SIGNING_SECRET,
    SlackStack,
    fake_slack,
    served,
    slack_settings,
    stack,
)
from tests.store.conftest import fresh_store_url
from tests.workflows.sample_workflows import OneStepResult
from tether.core.settings import Settings
from tether.store.engine import dispose_all, session_scope
from tether.store.reviews import ReviewItem
from tether.store.slack_replay import claim_slack_request

WINDOW = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, "tether_slack") as url:
        yield url


def test_a_signature_is_taken_once_across_restarts_and_forgotten_after_the_window(
    store_url: str,
) -> None:
    signature = "v0=" + "ab" * 32
    now = datetime.now(UTC)
    with session_scope(store_url) as session:
        assert claim_slack_request(session, signature, window=WINDOW, now=now)
    with session_scope(store_url) as session:
        assert not claim_slack_request(session, signature, window=WINDOW, now=now)
    dispose_all()  # a restart: nothing held in memory
    with session_scope(store_url) as session:
        assert not claim_slack_request(session, signature, window=WINDOW, now=now + WINDOW)
        # another signature prunes rows past the window; the timestamp check refuses those
        later = now + 2 * WINDOW + timedelta(seconds=1)
        assert claim_slack_request(session, "v0=" + "cd" * 32, window=WINDOW, now=later)
    with session_scope(store_url) as session:
        assert claim_slack_request(session, signature, window=WINDOW, now=later)


@pytest.mark.integration
async def test_a_signed_click_replayed_to_another_replica_or_after_a_restart_is_refused(
    stack: SlackStack,  # noqa: F811  (the fixture imported above)
) -> None:
    run_id, _, message = await stack.paused("test_one_step", QUESTION)
    approve = stack.slack.block_action(message.channel, message.ts, "tether_approve", ALICE)
    body = interaction_body(approve)
    headers = signed_headers(body, SIGNING_SECRET)
    assert (
        await stack.http.post("/slack/interactions", content=body, headers=headers)
    ).status_code == 200
    # The acknowledgement came after the decision was written: it survives this process.
    [intent] = stack.intents()
    assert intent.decision["kind"] == "approve" and intent.decision["reviewer"] == "alice"

    # A second replica of the UI (same store), and the first one restarted.
    for _ in ("another replica", "after a restart"):
        replica = create_app(stack.settings, client=stack.client)
        async with (
            served(replica) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as other,
        ):
            again = await other.post("/slack/interactions", content=body, headers=headers)
        assert again.status_code == 409, again.text

    result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.disposition == "approved"
    assert [event.actor for event in stack.decisions(run_id)] == ["alice"]
    assert len(stack.intents()) == 1


@pytest.mark.integration
async def test_a_submitted_reject_is_in_the_outbox_before_slack_is_acknowledged(
    stack: SlackStack,  # noqa: F811  (the fixture imported above)
) -> None:
    run_id, _, message = await stack.paused("test_one_step", QUESTION)
    click = stack.slack.block_action(message.channel, message.ts, "tether_reject", BOB)
    assert (await stack.send(click)).status_code == 200
    [opened] = await stack.slack.wait_for("views.open")
    submitted = stack.slack.view_submission(
        opened.response["view"]["id"], BOB, {"reason": "Wrong plan quoted."}
    )
    assert (await stack.send(submitted)).status_code == 200
    [intent] = stack.intents()  # written before the answer, not in a task after it
    assert intent.decision["kind"] == "reject" and intent.decision["reviewer"] == "bob"
    assert intent.decision["reason"] == "Wrong plan quoted."
    result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.status == "rejected"
    assert [event.actor for event in stack.decisions(run_id)] == ["bob"]


# --- held to Slack's published Block Kit limits ---------------------------------------------


def _item(schema: dict[str, Any], output: dict[str, Any], **fields: Any) -> ReviewItem:
    values: dict[str, Any] = {
        "review_id": "run-1:step:1", "run_id": "run-1", "workflow": "support_triage",
        "step": "extract", "tenant": "default", "reason": "low_confidence",
        "summary": "extract: confidence 0.41 needs review", "output": output,
        "output_schema": schema, "output_model": None, "output_digest": "sha256:" + "ab" * 32,
        "allowed_roles": ["support"], "expires_at": datetime.now(UTC) + timedelta(days=1),
    }  # fmt: skip
    return ReviewItem(**(values | fields))


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _inputs(view: dict[str, Any]) -> dict[str, Any]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def test_the_notification_text_is_escaped_like_the_blocks() -> None:
    item = _item({}, {}, summary="<!channel> pay <https://evil.example|here> & now")
    text = message_text(item)
    assert "<!channel>" not in text and "<https://evil.example" not in text
    assert "&lt;!channel&gt;" in text and "&amp; now" in text


def test_an_edit_modal_with_nothing_editable_offers_no_save() -> None:
    item = _item(_schema({"reply": {"type": "string"}}), {"reply": "x" * 3500})
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []
    assert "submit" not in view and _inputs(view) == {}
    assert "too long to edit in Slack" in json.dumps(view["blocks"])


def test_option_texts_are_never_empty() -> None:
    schema = _schema({"tone": {"type": "string", "enum": [" ", "calm", ""]},
                      "mood": {"type": "string", "enum": [" ", "calm"]}})  # fmt: skip
    item = _item(schema, {"tone": "calm", "mood": " "})
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []
    mood = _inputs(view)["f.mood"]["element"]
    assert mood["type"] == "static_select"
    assert [o["text"]["text"] for o in mood["options"]] == ["(blank)", "calm"]
    assert _inputs(view)["f.tone"]["element"]["type"] == "plain_text_input"  # "" cannot be one


def test_block_ids_stay_within_255_characters_and_read_back() -> None:
    name = "a_very_long_field_name_" * 14  # 322 characters
    item = _item(_schema({name: {"type": "string"}}), {name: "before"})
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []
    [block_id] = _inputs(view)
    assert len(block_id) <= 255
    values = {block_id: {"value": {"type": "plain_text_input", "value": "after"}}}
    edited, errors = parse_edit_submission(item, values)
    assert errors == {} and edited == {name: "after"}


def test_fields_beyond_what_a_modal_holds_are_named_not_dropped() -> None:
    names = [f"field_{n:03d}" for n in range(150)]
    item = _item(_schema({n: {"type": "string"} for n in names}), {n: n for n in names})
    view = edit_modal(item, item.output_digest)
    assert view_problems(view) == []  # at most 100 blocks
    shown = _inputs(view)
    assert len(shown) == 98
    note = json.dumps(view["blocks"][-1])
    assert "52 more fields" in note and "Field 149" in note and "Field 098" in note
    edited, errors = parse_edit_submission(item, {})
    assert errors == {} and edited == {n: n for n in names}  # the rest kept as they were


def test_the_fake_holds_blocks_to_slacks_limits_like_slack() -> None:
    too_long = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}, "block_id": "b" * 256},
    ]
    assert block_problems(too_long) == [
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        "invalid or duplicate block_id [json-pointer:/blocks/1/block_id]",
        "must be less than 3001 characters [json-pointer:/blocks/1/text/text]",
    ]
    select = {"type": "input", "label": {"type": "plain_text", "text": "Tone"}, "element": {
        "type": "static_select", "action_id": "value",
        "placeholder": {"type": "plain_text", "text": "p" * 151},
        "options": [{"text": {"type": "plain_text", "text": ""}, "value": "x"}],
    }}  # fmt: skip
    problems = block_problems([select], inputs=True)
    assert any("placeholder" in p for p in problems)
    assert any("more than 0 characters" in p and "options/0/text" in p for p in problems)
    assert len(block_problems([select] * 101, limit=100, inputs=True)) > 0


@pytest.mark.integration
async def test_invalid_blocks_are_logged_with_slacks_messages(
    fake_slack: FakeSlack,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(
        home=tmp_path,
        slack_bot_token=SecretStr(fake_slack.bot_token),
        slack_api_url=fake_slack.api_url,
    )
    notifier = SlackNotifier(settings)
    item = _item({}, {}, summary="s" * 4000)
    with caplog.at_level(logging.WARNING, logger="activities.slack"):
        await notifier.client.chat_postMessage(channel="#x", text="x")  # the channel exists
        sent = await notifier.review_opened(
            item.model_copy(update={"workflow": "w" * 200})  # a header over 150: fine, clipped
        )
        assert sent is not None
        await notifier._post(item, channel="#x", text="x", blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        ])  # fmt: skip
    [call] = [c for c in fake_slack.calls_to("chat.postMessage") if not c.ok]
    assert call.error == "invalid_blocks"
    assert call.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
    ]
    logged = caplog.text
    assert "invalid_blocks" in logged
    assert "must be less than 151 characters [json-pointer:/blocks/0/text/text]" in logged
    assert "hhhh" not in logged  # never the text itself
