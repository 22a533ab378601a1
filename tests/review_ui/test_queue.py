"""The queue page and list API over real HTTP: filters, order by due time, pages, claims."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.review_ui.conftest import ALICE, BOB, CAROL, UiServer, login, seed_items
from tether.core.settings import Settings

pytestmark = pytest.mark.integration


def review_links(html: str) -> list[str]:
    return re.findall(r'class="item-link" href="/reviews/([^"]+)"', html)


@pytest.fixture
async def alice(ui: UiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as http:
        http.headers["X-Test-Csrf"] = await login(http, *ALICE)
        yield http


async def test_the_queue_filters_pages_and_puts_overdue_items_first(
    settings: Settings, alice: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    seed_items(settings, 120, due_at=now + timedelta(hours=5))
    [overdue] = seed_items(settings, 1, due_at=now - timedelta(hours=2, minutes=10))
    seed_items(settings, 7, workflow="document_summary", reason="invalid_output")
    seed_items(settings, 3, status="approved", decision="approve", reviewer="bob")

    first = await alice.get("/")
    assert first.status_code == 200
    assert "128 items pending" in first.text
    links = review_links(first.text)
    assert len(links) == 50
    assert links[0] == overdue.replace(":", "%3A")
    assert "overdue 2h 10m" in first.text
    assert "1\u201350 of 128" in first.text  # an en dash

    last = await alice.get("/?page=3")
    assert len(review_links(last.text)) == 28
    assert "Page 3 of 3" in last.text and "Next →" not in last.text

    docs = await alice.get("/?workflow=document_summary")
    assert len(review_links(docs.text)) == 7
    assert "7 items pending in document_summary" in docs.text
    invalid = await alice.get("/?reason=invalid_output")
    assert len(review_links(invalid.text)) == 7
    decided = await alice.get("/?status=approved")
    assert len(review_links(decided.text)) == 3

    api = await alice.get(
        "/api/reviews",
        params={"workflow": "support_triage", "per_page": 100, "page": 2},
        auth=BOB,
    )
    body = api.json()
    assert (body["total"], body["pages"], len(body["items"])) == (121, 2, 21)
    assert (
        await alice.get("/api/reviews", params={"reason": "bogus"}, auth=BOB)
    ).status_code == 422


async def test_claiming_an_item_another_reviewer_holds_is_refused_with_a_clear_message(
    settings: Settings, alice: httpx.AsyncClient, ui: UiServer
) -> None:
    [review_id] = seed_items(settings, 1)
    csrf = alice.headers["X-Test-Csrf"]

    claimed = await alice.post(
        f"/reviews/{review_id}/claim", data={"csrf_token": csrf, "next": "/"}
    )
    assert claimed.status_code == 303
    queue = await alice.get("/")
    assert "You claimed this item" in queue.text
    assert '<span class="claim claim-mine">alice</span>' in queue.text
    mine = await alice.get("/?claimed=mine")
    assert len(review_links(mine.text)) == 1

    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=10) as bob:
        taken = await bob.post(f"/api/reviews/{review_id}/claim")
        assert taken.status_code == 409
        assert taken.json()["detail"] == "alice has already claimed this item"
        not_his = await bob.post(f"/api/reviews/{review_id}/release")
        assert not_his.status_code == 409
        assert not_his.json()["detail"] == "only alice, who claimed this item, can release it"

    async with httpx.AsyncClient(base_url=ui.base_url, auth=CAROL, timeout=10) as carol:
        viewer = await carol.post(f"/api/reviews/{review_id}/claim")
        assert viewer.status_code == 409
        assert viewer.json()["detail"] == (
            "carol may not decide support_triage reviews, so cannot claim them"
        )

    released = await alice.post(f"/reviews/{review_id}/release", data={"csrf_token": csrf})
    assert released.status_code == 303
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=10) as bob:
        now_bobs = await bob.post(f"/api/reviews/{review_id}/claim")
        assert now_bobs.json() == {"review_id": review_id, "claimed_by": "bob"}
        detail = (await bob.get(f"/api/reviews/{review_id}")).json()
    assert [e["kind"] for e in detail["timeline"]] == [
        "review_claimed",
        "review_released",
        "review_claimed",
    ]
    again = await alice.post(f"/reviews/{review_id}/claim", data={"csrf_token": csrf, "next": "/"})
    assert again.status_code == 303
    assert "Not claimed: bob has already claimed this item." in (await alice.get("/")).text
