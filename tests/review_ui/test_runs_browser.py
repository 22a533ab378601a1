"""The runs page, a run's live page and the dashboard in a real headless Chromium, with data
from real runs (real Temporal dev server, real worker, the app under uvicorn). Screenshots go
to test-output/screenshots/ (runs.png, run-waiting.png, run-live.png, dashboard.png)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, expect
from temporalio.client import Client
from temporalio.worker import Worker

from tests.review_ui.conftest import BOB, UiServer, wait_for_pending
from tests.review_ui.test_browser import SCREENSHOTS, browser, sign_in
from tests.review_ui.test_runs_pages import approve, seed_dashboard_data, start_registered_run
from tether.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

__all__ = ["browser"]  # the fixture, shared with the review browser test


async def test_runs_page_run_page_live_and_dashboard_render_real_runs(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer, browser: Browser
) -> None:
    finished = await start_registered_run(client, settings)
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http:
        await approve(http, client, finished)
    await client.get_workflow_handle(finished).result()
    run_id = await start_registered_run(client, settings)
    await wait_for_pending(client, run_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page = await browser.new_page(viewport={"width": 1360, "height": 900})
    refused: list[str] = []

    def _watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", _watch)
    await sign_in(page, ui.base_url, *BOB)

    await page.goto(f"{ui.base_url}/runs")
    await expect(page.locator("h1")).to_have_text("Runs")
    waiting_row = page.locator("tr", has_text=run_id)
    await expect(waiting_row.locator(".status-badge")).to_have_text("awaiting review")
    done_row = page.locator("tr", has_text=finished)
    await expect(done_row.locator(".status-badge")).to_have_text("completed")
    await expect(done_row).to_contain_text("bob")
    await page.screenshot(path=str(SCREENSHOTS / "runs.png"), full_page=True)

    await page.select_option("select[name=status]", "completed")
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("a.run-link")).to_have_text([finished])

    await page.goto(f"{ui.base_url}/runs")
    await page.locator("a.run-link", has_text=run_id).click()
    timeline = page.locator("#run-timeline tbody tr")
    await expect(timeline).to_have_count(3)
    await expect(timeline.nth(2)).to_contain_text("awaiting review")
    await page.screenshot(path=str(SCREENSHOTS / "run-waiting.png"), full_page=True)

    # The decision is taken elsewhere (the API): the open page follows the run live.
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=60) as http:
        await approve(http, client, run_id)
    await expect(timeline).to_have_count(8, timeout=30_000)
    await expect(timeline.nth(3)).to_contain_text("approved")
    await expect(timeline.nth(3)).to_contain_text("bob")
    await expect(timeline.nth(7)).to_contain_text("draft_reply")
    await expect(page.locator("#run-state")).to_have_text("completed", timeout=30_000)
    await expect(page.locator("#live-note")).to_have_text("The run has ended.")
    await page.screenshot(path=str(SCREENSHOTS / "run-live.png"), full_page=True)

    runs = seed_dashboard_data(settings.resolved_database_url)
    await page.goto(f"{ui.base_url}/dashboard?window=1h")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("svg.chart")).to_have_count(7)
    # (five, then one per calibrated step: classify reviewed above, extract seeded)
    await expect(page.locator("#chart-cost polyline")).to_have_count(1)
    # Three steps, each with its p50, p95 and p99 bar.
    await expect(page.locator("#chart-latency rect.chart-bar")).to_have_count(9)
    await expect(page.locator("#chart-confidence line.threshold")).to_have_count(3)
    await expect(page.locator("#chart-confidence")).to_contain_text("accept")
    await expect(page.locator("#queue-depth")).to_have_text("0")
    # Budget alerts of bob's tenant only, newest first; the calibrated step with its known
    # suggested threshold and the accept threshold drawn on its chart.
    alerts = page.locator("#budget-alerts tr.alert-row")
    await expect(alerts).to_have_count(2)
    await expect(alerts.nth(0)).to_contain_text(runs["acme"])
    await expect(alerts.nth(1).locator(".alert-threshold")).to_have_text("80 %")
    await expect(alerts.nth(1).locator(".alert-notified")).to_have_text("sent")
    await expect(page.locator("#budget-alerts")).not_to_contain_text("globex")
    await expect(page.locator("figure.calibration")).to_have_count(2)
    step = page.locator('figure.calibration[data-step="support_triage.extract"]')
    await expect(step.locator(".suggested-threshold")).to_have_text("0.75")
    await expect(step.locator("line.threshold")).to_have_count(2)
    await expect(step.locator("polyline.precision")).to_have_count(1)
    await expect(step).to_contain_text("suggested 0.75")
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    print(f"screenshots in {SCREENSHOTS}")
    assert refused == [], refused
