"""The HTML pages over real HTTP: login, CSRF, roles, form validation, double submits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.worker import Worker

from tests.review_ui.conftest import (
    ALICE,
    BOB,
    CAROL,
    UiServer,
    form_value,
    login,
    start_paused_run,
    wait_for_item,
    wait_for_pending,
)
from tether.core.settings import Settings
from tether.store.engine import get_engine
from tether.store.reviews import DecisionIntent, ReviewItem, get_review

pytestmark = pytest.mark.integration


def intents(settings: Settings) -> list[DecisionIntent]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return list(session.exec(select(DecisionIntent)).all())


def item(settings: Settings, review_id: str) -> ReviewItem:
    with Session(get_engine(settings.resolved_database_url)) as session:
        found = get_review(session, review_id)
        assert found is not None
        return found


@pytest.fixture
async def browser_like(ui: UiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as http:
        yield http


async def test_pages_need_a_login_and_a_wrong_password_is_refused(
    settings: Settings, browser_like: httpx.AsyncClient
) -> None:
    queue = await browser_like.get("/")
    assert queue.status_code == 303 and queue.headers["location"] == "/login?next=/"
    page = await browser_like.get("/login")
    token = form_value(page.text, "csrf_token")
    wrong = await browser_like.post(
        "/login", data={"name": "alice", "password": "bob-dev", "csrf_token": token}
    )
    assert wrong.status_code == 401
    assert "Wrong name or password." in wrong.text
    no_token = await browser_like.post("/login", data={"name": "alice", "password": "alice-dev"})
    assert no_token.status_code == 403
    assert (await browser_like.get("/")).status_code == 303

    csrf = await login(browser_like, *ALICE)
    cookie = browser_like.cookies.jar
    session_cookie = next(c for c in cookie if c.name == "tether_session")
    assert session_cookie.has_nonstandard_attr("HttpOnly")
    assert csrf != token  # a new token after login

    out = await browser_like.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert (await browser_like.get("/")).status_code == 303


async def test_a_post_without_the_right_csrf_token_is_refused_and_changes_nothing(
    client: Client, settings: Settings, review_worker: Worker, browser_like: httpx.AsyncClient
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    await wait_for_item(settings, review_id)
    csrf = await login(browser_like, *ALICE)

    approve = {"kind": "approve", "output_digest": digest, "nonce": "n1"}
    missing = await browser_like.post(f"/reviews/{review_id}/decide", data=approve)
    wrong = await browser_like.post(
        f"/reviews/{review_id}/decide", data=approve | {"csrf_token": csrf[:-2] + "xx"}
    )
    claim = await browser_like.post(f"/reviews/{review_id}/claim", data={"csrf_token": "forged"})

    assert (missing.status_code, wrong.status_code, claim.status_code) == (403, 403, 403)
    assert "security token" in missing.text
    assert intents(settings) == []
    assert item(settings, review_id).status == "pending"
    assert item(settings, review_id).claimed_by is None
    pending = await wait_for_pending(client, run_id)
    assert pending.pending is not None and pending.pending.review_id == review_id


async def test_a_viewer_sees_the_item_but_no_decision_forms(
    client: Client, settings: Settings, review_worker: Worker, browser_like: httpx.AsyncClient
) -> None:
    _, status = await start_paused_run(client, settings)
    assert status.pending is not None
    await wait_for_item(settings, status.pending.review_id)
    csrf = await login(browser_like, *CAROL)

    page = await browser_like.get(f"/reviews/{status.pending.review_id}")
    assert page.status_code == 200
    assert "Approve output" not in page.text
    assert "You can view this item but not decide it" in page.text
    forced = await browser_like.post(
        f"/reviews/{status.pending.review_id}/decide",
        data={
            "csrf_token": csrf,
            "kind": "approve",
            "nonce": "x",
            "output_digest": status.pending.output_digest,
        },
    )
    assert forced.status_code == 409
    assert "carol may not decide support_triage reviews" in forced.text
    assert intents(settings) == []


async def test_form_errors_are_shown_inline_and_nothing_typed_is_lost(
    client: Client, settings: Settings, review_worker: Worker, browser_like: httpx.AsyncClient
) -> None:
    _, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    await wait_for_item(settings, review_id)
    csrf = await login(browser_like, *ALICE)
    base = {"csrf_token": csrf, "output_digest": digest, "nonce": "form-1"}

    too_long = "x" * 301
    edit = await browser_like.post(
        f"/reviews/{review_id}/decide",
        data=base
        | {
            "kind": "edit",
            "f.category": "account",
            "f.priority": "urgent",
            "f.rationale": too_long,
        },
    )
    assert edit.status_code == 422
    assert "String should have at most 300 characters" in edit.text
    assert too_long in edit.text
    assert '<option value="urgent" selected>' in edit.text
    assert '<option value="account" selected>' in edit.text

    reject = await browser_like.post(
        f"/reviews/{review_id}/decide", data=base | {"kind": "reject", "reason": "  "}
    )
    assert reject.status_code == 422
    assert "a rejection needs a reason" in reject.text
    assert intents(settings) == []
    assert item(settings, review_id).status == "pending"


async def test_a_double_submitted_form_is_one_decision(
    client: Client, settings: Settings, review_worker: Worker, browser_like: httpx.AsyncClient
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id = status.pending.review_id
    await wait_for_item(settings, review_id)
    await login(browser_like, *ALICE)
    page = await browser_like.get(f"/reviews/{review_id}")
    form = {
        "csrf_token": form_value(page.text, "csrf_token", 1),  # the approve form's
        "kind": "approve",
        "output_digest": form_value(page.text, "output_digest"),
        "nonce": form_value(page.text, "nonce"),
    }

    first = await browser_like.post(f"/reviews/{review_id}/decide", data=form)
    second = await browser_like.post(f"/reviews/{review_id}/decide", data=form)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert [i.status for i in intents(settings)] == ["delivered"]
    landed = await browser_like.get(first.headers["location"])
    assert "Your decision was taken by the run." in landed.text
    assert "Approved" in landed.text and "alice" in landed.text
    result = await client.get_workflow_handle(run_id).result()
    assert result["status"] == "completed"


async def test_deciding_after_someone_else_did_shows_who_decided_first(
    client: Client,
    settings: Settings,
    review_worker: Worker,
    ui: UiServer,
    browser_like: httpx.AsyncClient,
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id, digest = status.pending.review_id, status.pending.output_digest
    await wait_for_item(settings, review_id)
    await login(browser_like, *ALICE)
    page = await browser_like.get(f"/reviews/{review_id}")  # alice reads the item...
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as bob:
        taken = await bob.post(  # ...while bob approves it through the API
            f"/api/reviews/{review_id}/decision", json={"kind": "approve", "output_digest": digest}
        )
    assert taken.status_code == 200
    await client.get_workflow_handle(run_id).result()

    late = await browser_like.post(
        f"/reviews/{review_id}/decide",
        data={
            "csrf_token": form_value(page.text, "csrf_token", 1),
            "kind": "reject",
            "output_digest": digest,
            "nonce": form_value(page.text, "nonce", 3),
            "reason": "too late",
        },
    )

    assert late.status_code == 409
    assert f"review {review_id} was already decided (approve) by bob" in late.text
    assert "Approve output" not in late.text
    assert "<strong>Approved</strong>" in late.text and "<strong>bob</strong>" in late.text
    assert [i.status for i in intents(settings)] == ["delivered"]
