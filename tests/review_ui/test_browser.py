"""End to end in a real headless Chromium: a reviewer edits a paused run's output and approves it.

Real Temporal dev server, real worker, the real app under uvicorn on a loopback port.
Screenshots of the queue and the detail page go to test-output/screenshots/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlmodel import Session
from temporalio.client import Client
from temporalio.worker import Worker

from tests.review_ui.conftest import ALICE, UiServer, start_paused_run, wait_for_item
from tether.core.settings import Settings
from tether.store.audit import events_for, verify_chain
from tether.store.engine import get_engine
from workflows.support_triage_steps import TriageResult

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


async def sign_in(page: Page, base_url: str, name: str, password: str) -> None:
    await page.goto(f"{base_url}/")
    await expect(page).to_have_url(f"{base_url}/login?next=/")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Review queue")


async def test_reviewer_edits_and_approves_in_the_browser_and_the_run_completes_with_the_edit(
    client: Client, settings: Settings, review_worker: Worker, ui: UiServer, browser: Browser
) -> None:
    run_id, status = await start_paused_run(client, settings)
    assert status.pending is not None
    review_id = status.pending.review_id
    item = await wait_for_item(settings, review_id)
    assert item.output is not None
    new_category = "account" if item.output["category"] != "account" else "technical"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page = await browser.new_page(viewport={"width": 1360, "height": 900})
    await sign_in(page, ui.base_url, *ALICE)

    row = page.locator("tr", has_text=run_id)
    await expect(row).to_have_count(1)
    await expect(row.locator(".due-badge")).to_contain_text("due in")
    await page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)

    await row.locator("a.item-link").click()
    await expect(page.locator("h1")).to_have_text("support_triage · classify")
    await expect(page.locator("text=Why it needs review")).to_be_visible()
    await expect(page.locator("table.components")).to_contain_text("schema validity")
    await page.locator("summary", has_text="Edit the output").click()
    await page.select_option("select[name='f.category']", new_category)
    await page.fill("textarea[name='f.rationale']", "The customer cannot log in; edited by alice.")
    await page.screenshot(path=str(SCREENSHOTS / "detail.png"), full_page=True)

    await page.click("text=Save edit and approve")
    outcome = page.locator("#outcome")
    await expect(outcome).to_contain_text("Edited and approved", timeout=15_000)
    await expect(outcome).to_contain_text("alice")
    await expect(outcome).to_contain_text("completed", timeout=15_000)
    await expect(page.locator(".decision-forms")).to_have_count(0)
    await page.screenshot(path=str(SCREENSHOTS / "detail-decided.png"), full_page=True)

    handle = client.get_workflow_handle(run_id, result_type=TriageResult)
    result = await handle.result()
    assert result.status == "completed"
    assert result.category == new_category
    assert result.steps[0].decision == "edit"

    with Session(get_engine(settings.resolved_database_url)) as session:
        decided = [e for e in events_for(session, run_id=run_id) if e.kind == "review_decided"]
        assert [(e.actor, e.detail["decision"], e.detail["channel"]) for e in decided] == [
            ("alice", "edit", "web")
        ]
        assert verify_chain(session) is None
