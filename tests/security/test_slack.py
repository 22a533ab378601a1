"""Slack, tried as an attacker would (issue 9, item 8): a captured signed click replayed to
another replica or after a restart, and an acknowledged click that must not be lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from review_ui.app import create_app
from tests.fakes.slack_api import interaction_body, signed_headers
from tests.review_ui.test_slack import (  # noqa: F401  (fixtures)
    ALICE,
    QUESTION,
    SIGNING_SECRET,
    SlackStack,
    fake_slack,
    served,
    slack_settings,
    stack,
)
from tests.store.conftest import postgres_url
from tests.workflows.sample_workflows import OneStepResult
from tether.store.engine import dispose_all, session_scope
from tether.store.slack_replay import claim_slack_request

WINDOW = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        dispose_all()
        return
    server = make_url(postgres_url())
    name = f"tether_slack_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_all()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


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
