"""Slack escalations end to end: the real Temporal dev server, a worker whose notifier talks to a
local fake of the Slack Web API, and the real review app served by uvicorn. Interaction payloads
are built from the messages the app really posted and signed with Slack's real algorithm."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, SecretStr
from sqlmodel import Session, select
from temporalio.client import Client

from activities.notify import SilentNotifier
from activities.slack import SlackNotifier, notifier_from_settings, slack_client
from policies.models import ReviewPolicy, ReviewTimeouts, TetherPolicy
from review_ui.app import create_app
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack, PostedMessage, interaction_body, signed_headers
from tests.policy_variants import gated
from tests.workflows.sample_workflows import OneStep, OneStepResult, Question
from tether.contracts import RunStatus
from tether.core.settings import Settings
from tether.store.audit import AuditEvent
from tether.store.engine import dispose_all, get_engine
from tether.store.reviews import DecisionIntent, ReviewItem, get_review
from tether.worker import running_worker
from workflows.support_triage_steps import Classification, Ticket

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5-tether-test"
ALICE, BOB, CAROL, STRANGER = "U0ALICE", "U0BOB", "U0CAROL", "U0NOBODY"
"""Slack users of the default policy: alice (reviewer, support), bob (reviewer, lead), carol
(viewer only); the stranger is no reviewer at all."""


@dataclass
class SlackStack:
    settings: Settings
    client: Client
    slack: FakeSlack
    http: httpx.AsyncClient

    async def send(
        self,
        payload: dict[str, Any],
        *,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """POST a payload to /slack/interactions, signed as Slack signs it."""
        body = interaction_body(payload)
        return await self.http.post(
            "/slack/interactions",
            content=body,
            headers=signed_headers(body, secret, timestamp=timestamp),
        )

    async def paused(self, workflow: str, arg: BaseModel) -> tuple[str, RunStatus, PostedMessage]:
        """Start a run, wait until it waits for a reviewer, and return its Slack message."""
        run_id = f"{workflow}-{uuid.uuid4().hex[:8]}"
        before = len(self.slack.calls_to("chat.postMessage"))
        await self.client.start_workflow(
            workflow, arg, id=run_id, task_queue=self.settings.task_queue
        )
        status = await self.wait_status(run_id, lambda s: s.pending is not None)
        await self.slack.wait_for("chat.postMessage", count=before + 1)
        item = self.item(status)
        assert item.slack_ts is not None and item.slack_channel is not None
        return run_id, status, self.slack.message(item.slack_channel, item.slack_ts)

    async def wait_status(self, run_id: str, done: Any, within_s: float = 30) -> RunStatus:
        handle = self.client.get_workflow_handle(run_id)
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            status = await handle.query("status", result_type=RunStatus)
            if done(status):
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"run {run_id} never reached the state: {status}")
            await asyncio.sleep(0.05)

    def item(self, status: RunStatus) -> ReviewItem:
        assert status.pending is not None
        return self.review(status.pending.review_id)

    def review(self, review_id: str) -> ReviewItem:
        with Session(get_engine(self.settings.resolved_database_url)) as session:
            item = get_review(session, review_id)
        assert item is not None
        return item

    def decisions(self, run_id: str) -> list[AuditEvent]:
        """The audit log's review_decided events of the run."""
        with Session(get_engine(self.settings.resolved_database_url)) as session:
            query = select(AuditEvent).where(
                AuditEvent.run_id == run_id, AuditEvent.kind == "review_decided"
            )
            return list(session.exec(query).all())

    def intents(self) -> list[DecisionIntent]:
        with Session(get_engine(self.settings.resolved_database_url)) as session:
            return list(session.exec(select(DecisionIntent)).all())


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in this event loop (lifespan included)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def slack_stack(
    client: Client, settings: Settings, slack: FakeSlack, policy: TetherPolicy
) -> AsyncIterator[SlackStack]:
    """A worker notifying the fake Slack and the review app, both on ``policy``."""
    notifier = SlackNotifier(settings)
    async with (
        running_worker(
            client, settings, policy=policy, notifier=notifier, extra_workflows=[OneStep]
        ),
        served(create_app(settings, client=client, policy=policy)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield SlackStack(settings=settings, client=client, slack=slack, http=http)


def action_ids(message: PostedMessage) -> list[str]:
    return message.action_ids()


def message_text(message: PostedMessage) -> str:
    """Everything a reader sees in the message's blocks, as one string."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return "\n".join(parts)


# --- fixtures -------------------------------------------------------------------------------

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def slack_settings(
    tmp_path: Path, temporal_address: str, fake_slack: FakeSlack
) -> Iterator[Settings]:
    yield make_settings(
        tmp_path,
        temporal_address,
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        TETHER_PUBLIC_URL="https://tether.example.test",
    )
    dispose_all()


@pytest.fixture
async def stack(
    client: Client, slack_settings: Settings, fake_slack: FakeSlack, policy: TetherPolicy
) -> AsyncIterator[SlackStack]:
    async with slack_stack(
        client, slack_settings, fake_slack, gated(policy, accept=1.0)
    ) as running:
        yield running


QUESTION = Question(text="What is the refund window for annual plans?")


# --- tests ----------------------------------------------------------------------------------


async def test_a_paused_review_is_posted_with_its_buttons_and_a_signed_approve_completes_the_run(
    stack: SlackStack,
) -> None:
    run_id, status, message = await stack.paused("test_one_step", QUESTION)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    assert message.channel == stack.slack.channel_id("#tether-reviews")
    assert action_ids(message) == ["tether_approve", "tether_reject", "tether_edit"]
    [approve_button] = [
        e for b in message.blocks if b["type"] == "actions" for e in b["elements"]
        if e["action_id"] == "tether_approve"
    ]  # fmt: skip
    assert json.loads(approve_button["value"]) == {"review_id": review_id, "digest": digest}
    shown = message_text(message)
    assert "test_one_step" in shown and "answer" in shown  # what it is: workflow and step
    assert "*Confidence*" in shown and "*Cost so far*" in shown and "*Why*" in shown
    assert f"https://tether.example.test/reviews/{quote(review_id, safe='')}" in shown

    response = await stack.send(
        stack.slack.block_action(message.channel, message.ts, "tether_approve", ALICE)
    )
    assert response.status_code == 200

    result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.status == "completed" and result.disposition == "approved"
    [decided] = stack.decisions(run_id)
    assert decided.actor == "alice" and decided.detail["channel"] == "slack"
    await stack.slack.wait_for("chat.update")
    updated = stack.slack.message(message.channel, message.ts)
    assert action_ids(updated) == []  # the buttons are gone
    assert "*Approved* by alice via Slack" in message_text(updated)


async def test_requests_not_signed_by_slack_are_refused_and_change_nothing(
    stack: SlackStack,
) -> None:
    run_id, _, message = await stack.paused("test_one_step", QUESTION)
    click = stack.slack.block_action(message.channel, message.ts, "tether_approve", ALICE)
    body = interaction_body(click)
    good = signed_headers(body, SIGNING_SECRET)
    forged = {
        "signed with another secret": signed_headers(body, "not-the-signing-secret"),
        "signed six minutes ago": signed_headers(
            body, SIGNING_SECRET, timestamp=int(time.time()) - 360
        ),
        "signed six minutes ahead": signed_headers(
            body, SIGNING_SECRET, timestamp=int(time.time()) + 360
        ),
        "without headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "without a signature": {k: v for k, v in good.items() if k != "X-Slack-Signature"},
        "with a malformed timestamp": good | {"X-Slack-Request-Timestamp": "yesterday"},
        "with a malformed signature": good | {"X-Slack-Signature": "v1=" + "0" * 64},
    }
    for case, headers in forged.items():
        response = await stack.http.post("/slack/interactions", content=body, headers=headers)
        assert response.status_code == 401, case
    tampered = interaction_body(click | {"user": click["user"] | {"id": BOB}})
    response = await stack.http.post("/slack/interactions", content=tampered, headers=good)
    assert response.status_code == 401, "a body changed after signing"

    # Give a wrongly accepted request time to act, then let bob decide for real: had any forged
    # request got through, alice's approval would stand and bob's would be refused.
    await asyncio.sleep(0.5)
    assert stack.intents() == [] and stack.slack.response_posts() == []
    bob = stack.slack.block_action(message.channel, message.ts, "tether_approve", BOB)
    assert (await stack.send(bob)).status_code == 200
    result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.steps[0].decision == "approve"
    assert [event.actor for event in stack.decisions(run_id)] == ["bob"]


async def test_a_replayed_click_is_refused_and_changes_nothing(stack: SlackStack) -> None:
    run_id, _, message = await stack.paused("test_one_step", QUESTION)
    click = stack.slack.block_action(message.channel, message.ts, "tether_reject", ALICE)
    approve = stack.slack.block_action(message.channel, message.ts, "tether_approve", ALICE)
    body = interaction_body(approve)
    headers = signed_headers(body, SIGNING_SECRET)
    assert (
        await stack.http.post("/slack/interactions", content=body, headers=headers)
    ).status_code == 200
    await stack.client.get_workflow_handle(run_id).result()
    await stack.slack.wait_for("chat.update")

    # The very same signed request again (a replay within the 5-minute window).
    again = await stack.http.post("/slack/interactions", content=body, headers=headers)
    assert again.status_code == 409
    # The same click signed again a second later, and a stale Reject button on the old message.
    assert (await stack.send(approve, timestamp=int(time.time()) + 1)).status_code == 200
    assert (await stack.send(click)).status_code == 200
    posts = await stack.slack.wait_for_response_posts(2)
    for post in posts:
        assert post.body["response_type"] == "ephemeral"
        assert "already decided" in post.body["text"]
    assert [event.actor for event in stack.decisions(run_id)] == ["alice"]
    assert stack.review(stack.decisions(run_id)[0].review_id or "").decision == "approve"
    assert len(stack.slack.calls_to("views.open")) == 0  # the stale Reject opened no form
    assert len(stack.slack.calls_to("chat.update")) == 1


async def test_clicks_by_users_without_the_role_are_refused_and_change_nothing(
    stack: SlackStack,
) -> None:
    run_id, status, message = await stack.paused("test_one_step", QUESTION)
    for user in (CAROL, STRANGER):
        for action in ("tether_approve", "tether_edit", "tether_reject"):
            click = stack.slack.block_action(message.channel, message.ts, action, user)
            assert (await stack.send(click)).status_code == 200
    posts = await stack.slack.wait_for_response_posts(6)
    texts = [post.body["text"] for post in posts]
    assert sum("carol may not decide" in text for text in texts) == 3, texts
    assert sum("not a Tether reviewer" in text for text in texts) == 3, texts
    assert all(post.body["response_type"] == "ephemeral" for post in posts)
    assert stack.slack.calls_to("views.open") == []
    paused = await stack.client.get_workflow_handle(run_id).query("status", result_type=RunStatus)
    assert paused.state == "awaiting_review" and paused.pending == status.pending
    assert stack.decisions(run_id) == [] and stack.intents() == []
    assert action_ids(stack.slack.message(message.channel, message.ts)) != []


async def test_a_decision_made_through_the_api_updates_the_slack_message(stack: SlackStack) -> None:
    run_id, status, message = await stack.paused("test_one_step", QUESTION)
    assert status.pending is not None
    response = await stack.http.post(
        f"/api/reviews/{quote(status.pending.review_id, safe='')}/decision",
        json={"kind": "reject", "output_digest": status.pending.output_digest,
              "reason": "cites the wrong plan"},
        auth=("bob", "bob-dev"),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.status == "rejected"
    await stack.slack.wait_for("chat.update")
    updated = stack.slack.message(message.channel, message.ts)
    assert action_ids(updated) == []
    shown = message_text(updated)
    assert "*Rejected* by bob via the API" in shown and "cites the wrong plan" in shown


async def test_reject_asks_for_a_reason_in_a_modal_then_rejects(stack: SlackStack) -> None:
    run_id, _, message = await stack.paused("test_one_step", QUESTION)
    click = stack.slack.block_action(message.channel, message.ts, "tether_reject", BOB)
    assert (await stack.send(click)).status_code == 200
    [opened] = await stack.slack.wait_for("views.open")
    view_id = opened.response["view"]["id"]
    empty = await stack.send(stack.slack.view_submission(view_id, BOB, {"reason": ""}))
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"reason": "A rejection needs a reason."},
    }
    submitted = stack.slack.view_submission(view_id, BOB, {"reason": "Wrong plan quoted."})
    response = await stack.send(submitted)
    assert response.status_code == 200 and response.content == b""  # closes the modal
    result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.status == "rejected"
    assert "Wrong plan quoted." in (result.halted_reason or "")


async def test_edit_opens_a_modal_built_from_the_schema_and_a_submission_edits_the_output(
    stack: SlackStack,
) -> None:
    ticket = Ticket(subject="Parcel lost", body="My order 1234 never arrived, please help.")
    run_id, status, message = await stack.paused("support_triage", ticket)
    assert message.channel == stack.slack.channel_id("#support-escalations")  # the policy's channel
    click = stack.slack.block_action(message.channel, message.ts, "tether_edit", ALICE)
    assert (await stack.send(click)).status_code == 200
    [opened] = await stack.slack.wait_for("views.open")
    view = stack.slack.view(opened.response["view"]["id"])
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert {k: e["type"] for k, e in inputs.items()} == {
        "f.category": "static_select", "f.priority": "static_select", "f.rationale": "plain_text_input",
    }  # fmt: skip
    categories = list(get_args(Classification.model_fields["category"].annotation))
    priorities = list(get_args(Classification.model_fields["priority"].annotation))
    assert [o["value"] for o in inputs["f.category"]["options"]] == categories
    assert [o["value"] for o in inputs["f.priority"]["options"]] == priorities
    item = stack.item(status)
    assert item.output is not None
    assert inputs["f.category"]["initial_option"]["value"] == item.output["category"]
    assert inputs["f.rationale"]["initial_value"] == item.output["rationale"]
    assert inputs["f.rationale"]["multiline"] is True and inputs["f.rationale"]["max_length"] == 300

    too_long = stack.slack.view_submission(view["id"], ALICE, {"f.rationale": "x" * 301})
    refused = (await stack.send(too_long)).json()
    assert refused["response_action"] == "errors" and "f.rationale" in refused["errors"]
    wanted = {"category": categories[-1], "priority": priorities[-1], "rationale": "Lost parcel."}
    edited = {f"f.{name}": value for name, value in wanted.items()}
    response = await stack.send(stack.slack.view_submission(view["id"], ALICE, edited))
    assert response.status_code == 200 and response.content == b""

    after = await stack.wait_status(run_id, lambda s: s.steps[0].decision == "edit")
    assert after.steps[0].state == "done"
    decided = stack.review(item.review_id)
    assert decided.decided_output == wanted
    assert decided.decided_via == "slack" and decided.reviewer == "alice"
    await stack.slack.wait_for("chat.update")
    assert "*Edited and approved* by alice via Slack" in message_text(
        stack.slack.message(message.channel, message.ts)
    )


async def test_slack_failures_do_not_fail_the_run_and_log_no_text(
    stack: SlackStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.slack.fail_next("chat.postMessage", "channel_not_found")
    run_id = f"down-{uuid.uuid4().hex[:8]}"
    secret_words = "Please refund customer Jane Roe at 12 Elm Street"
    await stack.client.start_workflow(
        "test_one_step",
        Question(text=secret_words),
        id=run_id,
        task_queue=stack.settings.task_queue,
    )
    status = await stack.wait_status(run_id, lambda s: s.pending is not None)
    assert stack.item(status).slack_ts is None  # not announced, but the item is in the queue
    failures = [r for r in caplog.records if "chat.postMessage failed" in r.getMessage()]
    assert len(failures) == 1 and "channel_not_found" in failures[0].getMessage()
    assert all("Jane Roe" not in r.getMessage() for r in caplog.records)


async def test_timeouts_remind_escalate_and_take_the_default_in_slack(
    client: Client, slack_settings: Settings, fake_slack: FakeSlack, policy: TetherPolicy
) -> None:
    timeouts = ReviewTimeouts(
        remind_after=timedelta(seconds=1),
        escalate_after=timedelta(seconds=2),
        escalate_to_role="lead",
        escalate_to_channel="#leads",
        default_after=timedelta(seconds=3),
        default_action="reject",
    )
    fast = gated(policy, accept=1.0).model_copy(
        update={"review": ReviewPolicy(roles=["support"], timeouts=timeouts)}
    )
    async with slack_stack(client, slack_settings, fake_slack, fast) as stack:
        run_id, _, message = await stack.paused("test_one_step", QUESTION)
        result = await stack.client.get_workflow_handle(run_id, result_type=OneStepResult).result()
    assert result.status == "rejected"
    posts = [call.args for call in fake_slack.calls_to("chat.postMessage")]
    threaded = [p["text"] for p in posts if p.get("thread_ts") == message.ts]
    assert len(threaded) == 3
    assert "Reminder" in threaded[0] and "Escalated" in threaded[1] and "lead" in threaded[1]
    assert "No decision in time" in threaded[2]
    [escalation] = [p for p in posts if p["channel"] == "#leads"]
    assert "tether_approve" in json.dumps(escalation["blocks"])  # leads can act from their channel
    final = fake_slack.message(message.channel, message.ts)
    assert action_ids(final) == []
    assert "*Rejected* by tether (timeout policy) via the timeout policy" in message_text(final)


async def test_without_a_signing_secret_interactions_are_off_with_a_clear_answer(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    async with (
        served(create_app(settings, client=client, policy=policy)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        body = interaction_body({"type": "block_actions"})
        response = await http.post(
            "/slack/interactions", content=body, headers=signed_headers(body, "x")
        )
    assert response.status_code == 503
    assert (
        response.json()["detail"] == "Slack interactions are off: SLACK_SIGNING_SECRET is not set"
    )


def test_without_a_token_slack_is_off_with_one_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier = notifier_from_settings(settings)
    assert isinstance(notifier, SilentNotifier)
    assert [r.getMessage() for r in caplog.records] == ["Slack is off: SLACK_BOT_TOKEN is not set"]


async def test_a_wrong_bot_token_is_logged_by_slacks_error_code_and_nothing_is_posted(
    fake_slack: FakeSlack, slack_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    good = slack_client(slack_settings)
    assert good is not None
    assert (await good.auth_test())["bot_id"] == "B0TETHER"
    wrong = slack_settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-revoked")})
    item = ReviewItem(
        review_id="r-1:answer:1", run_id="r-1", workflow="test_one_step", step="answer",
        tenant="default", reason="low_confidence", summary="answer: secret customer words",
        output_digest="sha256:" + "0" * 64, expires_at=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    assert await SlackNotifier(wrong).review_opened(item) is None
    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.error == "invalid_auth"
    [line] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert line == "Slack chat.postMessage failed for review r-1:answer:1: invalid_auth"
