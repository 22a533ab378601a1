"""Provider health as the web app serves it: ``GET /api/providers`` and the Providers page in a
real headless Chromium, over rows two workers published to the store (one of them stale)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, expect

from activities.provider_health import ModelHealth
from tests.review_ui.conftest import ALICE, UiServer
from tests.review_ui.test_browser import SCREENSHOTS, browser, sign_in
from tether.core.settings import Settings
from tether.store.engine import session_scope
from tether.store.provider_health import publish_health

pytestmark = [pytest.mark.integration]
__all__ = ["browser"]  # the Chromium fixture, shared with the review browser test

DEAD, LIVE = "openai/gpt-4o-mini", "openai/gpt-4o"


def health(
    model: str, state: str, calls: int, failures: int, p50: float, p95: float
) -> ModelHealth:
    now = datetime.now(UTC)
    return ModelHealth(
        model=model,
        provider=model.split("/", 1)[0],
        state=state,  # type: ignore[arg-type]
        opened_at=now if state == "open" else None,
        open_until=now + timedelta(seconds=30) if state == "open" else None,
        trips=1 if state == "open" else 0,
        breaker_calls=calls,
        breaker_failures=failures,
        calls=calls,
        failures=failures,
        error_rate=failures / calls if calls else 0.0,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
    )


def seed(settings: Settings) -> None:
    """worker-a sees DEAD open; worker-b (fresh) sees it closed; worker-c stopped an hour ago."""
    now = datetime.now(UTC)
    published = [
        ("worker-a", now, [health(DEAD, "open", 5, 5, 40, 90), health(LIVE, "closed", 10, 0, 200, 400)]),
        ("worker-b", now, [health(DEAD, "closed", 5, 1, 50, 120), health(LIVE, "closed", 10, 1, 300, 900)]),
        ("worker-c", now - timedelta(hours=1), [health(LIVE, "open", 4, 4, 10, 20)]),
    ]  # fmt: skip
    for worker, taken_at, models in published:
        with session_scope(settings.resolved_database_url) as session:
            publish_health(session, worker=worker, taken_at=taken_at, window_s=300, models=models)


async def test_api_providers_merges_every_worker_and_marks_stale_rows(
    ui: UiServer, settings: Settings
) -> None:
    seed(settings)
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as http:
        assert (await http.get("/api/providers")).status_code == 401
        response = await http.get("/api/providers", auth=ALICE)
    assert response.status_code == 200
    view = {m["model"]: m for m in response.json()["models"]}
    dead, live = view[DEAD], view[LIVE]
    assert dead["combined"] == {
        "state": "open",
        "workers": 2,
        "open_on": 1,
        "calls": 10,
        "failures": 6,
        "error_rate": 0.6,
        "latency_p50_ms": 50.0,
        "latency_p95_ms": 120.0,
    }
    assert [(w["worker"], w["state"], w["stale"]) for w in dead["workers"]] == [
        ("worker-a", "open", False),
        ("worker-b", "closed", False),
    ]
    # worker-c's "open" is an hour old: shown, marked stale, left out of the combined view.
    assert live["combined"]["state"] == "closed"
    assert live["combined"]["calls"] == 20 and live["combined"]["error_rate"] == 0.05
    assert live["combined"]["latency_p95_ms"] == 900.0
    stale = [w for w in live["workers"] if w["stale"]]
    assert [(w["worker"], w["state"]) for w in stale] == [("worker-c", "open")]


@pytest.mark.browser
async def test_the_providers_page_shows_breakers_per_worker_and_combined(
    ui: UiServer, settings: Settings, browser: Browser
) -> None:
    seed(settings)
    page = await browser.new_page()
    await sign_in(page, ui.base_url, *ALICE)
    await page.click("nav.topnav >> text=Providers")
    await expect(page.locator("h1")).to_have_text("Providers")
    dead = page.locator(f"tbody[data-model='{DEAD}']")
    combined = dead.locator("tr.combined")
    await expect(combined).to_have_attribute("data-state", "open")
    await expect(combined.locator(".breaker-badge")).to_have_text("open")
    await expect(combined.locator(".error-rate")).to_have_text("60%")
    await expect(dead.locator("tr.worker[data-worker='worker-a'] .breaker-badge")).to_have_text(
        "open"
    )
    live = page.locator(f"tbody[data-model='{LIVE}']")
    await expect(live.locator("tr.combined .breaker-badge")).to_have_text("closed")
    stale = live.locator("tr.worker.stale")
    await expect(stale).to_have_count(1)
    await expect(stale.locator(".stale-badge")).to_have_text("stale")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "providers.png"), full_page=True)
    await page.close()
