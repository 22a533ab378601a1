"""The live run stream's limits, on a real run (real Temporal dev server, real worker, the real
app under uvicorn): a stream ends after its lifetime and a reconnect with ``Last-Event-ID``
(what a browser's EventSource sends) gets the rest exactly once; a login holds a bounded number
of streams (429 beyond), freed when a stream closes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from review_ui.routes import run_feed
from tests.review_ui.conftest import ALICE, BOB, UiServer, wait_for_pending
from tests.review_ui.test_runs_pages import approve, start_registered_run
from tether.core.settings import Settings

pytestmark = pytest.mark.integration

Frame = tuple[str, str | None, dict[str, Any]]


async def frames_of(response: httpx.Response) -> AsyncIterator[Frame]:
    """The (event, id, data) frames of one SSE response until the server ends it."""
    event, event_id, data = "message", None, ""
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, event_id, json.loads(data)
            event, event_id, data = "message", None, ""
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "id":
            event_id = value
        elif field == "data":
            data += value


async def follow_like_a_browser(
    http: httpx.AsyncClient, run_id: str, frames: list[Frame], ended_streams: list[float]
) -> None:
    """What EventSource does: read a stream; when the server ends it without an ``end`` event,
    reconnect with the last event id seen."""
    last_id: str | None = None
    loop = asyncio.get_running_loop()
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        opened = loop.time()
        async with http.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as response:
            assert response.status_code == 200
            async for frame in frames_of(response):
                frames.append(frame)
                if frame[1]:
                    last_id = frame[1]
                if frame[0] == "end":
                    return
        ended_streams.append(loop.time() - opened)


async def test_a_stream_ends_after_its_lifetime_and_a_reconnect_resumes_exactly_once(
    client: Client,
    settings: Settings,
    review_worker: Worker,
    ui: UiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_feed, "STREAM_LIFETIME_S", 1.5)
    monkeypatch.setattr(run_feed, "HEARTBEAT_S", 0.3)
    run_id = await start_registered_run(client, settings)
    frames: list[Frame] = []
    ended: list[float] = []
    async with httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as http:
        follower = asyncio.create_task(follow_like_a_browser(http, run_id, frames, ended))
        await wait_for_pending(client, run_id)
        await asyncio.sleep(3.5)  # the run waits for a human: the streams end and reconnect
        assert not follower.done()
        await approve(http, client, run_id)
        await asyncio.wait_for(follower, 60)

    assert len(ended) >= 2, "a stream ends after its lifetime; the browser reconnects"
    assert all(1.3 <= seconds < 5 for seconds in ended), ended
    seqs = [int(event_id) for kind, event_id, _ in frames if kind == "step" and event_id]
    assert seqs == list(range(1, 9)), "every event once, in order, across the reconnects"
    steps = [(data["step"], data["state"]) for kind, _, data in frames if kind == "step"]
    assert steps[2] == ("classify", "awaiting_review") and steps[3] == ("classify", "approved")
    assert frames[-1][0] == "end" and frames[-1][2]["state"] == "completed"


async def refusal(http: httpx.AsyncClient, url: str) -> str:
    """The detail of a 429 with Retry-After (read as a stream: a wrong 200 fails, not hangs)."""
    async with http.stream("GET", url) as response:
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "30"
        return str(json.loads(await response.aread())["detail"])


async def test_a_login_holds_a_bounded_number_of_streams(
    client: Client,
    settings: Settings,
    review_worker: Worker,
    ui: UiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_feed, "MAX_STREAMS_PER_REVIEWER", 2)
    monkeypatch.setattr(run_feed, "MAX_STREAMS", 3)
    monkeypatch.setattr(run_feed, "HEARTBEAT_S", 0.3)
    run_id = await start_registered_run(client, settings)
    await wait_for_pending(client, run_id)
    url = f"/api/runs/{run_id}/events"
    async with (
        httpx.AsyncClient(base_url=ui.base_url, auth=BOB, timeout=30) as bob,
        httpx.AsyncClient(base_url=ui.base_url, auth=ALICE, timeout=30) as alice,
    ):
        async with bob.stream("GET", url) as first, bob.stream("GET", url) as second:
            assert (first.status_code, second.status_code) == (200, 200)
            assert await refusal(bob, url) == "2 live run streams open for this login: close a tab"
            async with alice.stream("GET", url) as hers:
                assert hers.status_code == 200  # another login has its own streams
                # Three open in all: the process's bound.
                assert (
                    await refusal(alice, url) == "too many live run streams open: try again later"
                )
        # Closed streams free their slots (the server notices the disconnect).
        for _ in range(50):
            async with bob.stream("GET", url) as again:
                if again.status_code == 200:
                    break
            await asyncio.sleep(0.1)
        assert again.status_code == 200
