"""A review item the injection guard opened, as a reviewer sees it in the web queue."""

from __future__ import annotations

import httpx
import pytest

from tests.review_ui.conftest import ALICE, UiServer, login, seed_items
from tether.core.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_quarantined_input_shows_its_verdict_and_offers_approve_or_reject(
    settings: Settings, ui: UiServer
) -> None:
    verdict = {
        "score": 0.93,
        "threshold": 0.5,
        "variables": ["body"],
        "rules": ["override/ignore_previous"],
        "evidence": ["body: ignore all previous instructions"],
        "input_digests": ["ab" * 16],
    }
    [review_id] = seed_items(
        settings,
        1,
        reason="prompt_injection",
        summary="classify: input held back from the model, prompt injection suspected in body",
        output=verdict,
        output_schema=None,
        confidence_score=None,
    )
    async with httpx.AsyncClient(base_url=ui.base_url, timeout=30) as http:
        await login(http, *ALICE)
        page = await http.get(f"/reviews/{review_id}")
    assert page.status_code == 200
    assert "Prompt injection" in page.text and "no model has seen it" in page.text
    assert "override/ignore_previous" in page.text and "0.93" in page.text
    assert "Approve: run the step on this input" in page.text
    assert 'value="reject"' in page.text
    assert 'value="edit"' not in page.text and 'value="retry"' not in page.text
