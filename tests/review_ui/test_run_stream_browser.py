"""A run's live page in a real headless Chromium when the server ends its streams after a short
lifetime: the browser's EventSource reconnects by itself (with ``Last-Event-ID``) and the
timeline still gets every step once, then the end (real Temporal dev server, real worker, the
app under uvicorn)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Browser, Request, expect
from temporalio.client import Client
from temporalio.worker import Worker

from policies.models import GateThresholds, TetherPolicy
from review_ui.routes import run_feed
from tests.review_ui.conftest import BOB, UiServer, pause_at, wait_for_pending
from tests.review_ui.test_browser import browser, sign_in
from tests.review_ui.test_runs_pages import approve, start_registered_run
from tether.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

__all__ = ["browser"]


@pytest.fixture
def review_policy(policy: TetherPolicy) -> TetherPolicy:
    """support_triage pauses at classify and again at draft_reply."""
    base = pause_at(policy, "classify")
    triage = base.workflows["support_triage"]
    always = GateThresholds(accept=1.0, review=0.0, escalate=0.0)
    current = triage.steps.get("draft_reply") or base.confidence
    steps = triage.steps | {"draft_reply": current.model_copy(update={"thresholds": always})}
    triage = triage.model_copy(update={"steps": steps})
    return base.model_copy(update={"workflows": base.workflows | {"support_triage": triage}})


async def test_the_live_page_reconnects_when_a_stream_ends_and_misses_no_step(
    client: Client,
    settings: Settings,
    review_worker: Worker,
    ui: UiServer,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_feed, "STREAM_LIFETIME_S", 1.0)
    run_id = await start_registered_run(client, settings)
    await wait_for_pending(client, run_id)
    page = await browser.new_page()
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if r.url.find("/events") > 0 else None)
    await sign_in(page, ui.base_url, *BOB)
    await page.goto(f"{ui.base_url}/runs/{run_id}")
    timeline = page.locator("#run-timeline tbody tr")
    await expect(timeline).to_have_count(3)
    # The run waits for a human; each stream ends after a second, the browser reconnects 2 s on.
    await asyncio.sleep(4.0)
    assert len(streams) >= 2
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http:
        await approve(http, client, run_id)  # classify
        await expect(timeline).to_have_count(9, timeout=30_000)  # draft_reply awaits review
        before = len(streams)
        await asyncio.sleep(4.0)  # streams end again; the browser resumes after seq 9
        assert len(streams) >= before + 1
        await approve(http, client, run_id)  # draft_reply
    await expect(page.locator("#run-state")).to_have_text("completed", timeout=30_000)
    await expect(page.locator("#live-note")).to_have_text("The run has ended.")
    await expect(timeline).to_have_count(10)
    seqs = await timeline.evaluate_all("rows => rows.map(r => r.cells[0].textContent)")
    assert seqs == [str(n) for n in range(1, 11)]
    await expect(timeline.nth(3)).to_contain_text("approved")
    await expect(timeline.nth(9)).to_contain_text("approved")
    resumed = [(await r.all_headers()).get("last-event-id") for r in streams]
    assert "9" in resumed, resumed  # what EventSource sent after the events it had seen
