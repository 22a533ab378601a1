"""The login throttle holds under concurrency: N simultaneous wrong guesses for one name are cut
at the limit before their passwords are checked, and argon2 verifications run a few at a time."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import review_ui.auth
from policies.loader import load_policy
from review_ui.app import create_app
from tests.store.conftest import postgres_url
from tether.core.settings import Settings
from tether.store.engine import dispose_all
from tether.store.logins import LoginThrottle

GUESSES = 30


class Verifications:
    """Counts the password checks that ran, and how many ran at once."""

    def __init__(self, check: object) -> None:
        self.check = check
        self.count = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, password: str, password_hash: str | None) -> bool:
        with self._lock:
            self.count += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)  # a slow hash widens the window a race needs
            return bool(self.check(password, password_hash))  # type: ignore[operator]
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def app_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    env = {"TETHER_HOME": str(tmp_path), "TETHER_TEMPORAL_ADDRESS": "127.0.0.1:9"}
    if request.param == "postgres":  # READ COMMITTED: each transaction sees only committed rows
        env["TETHER_DATABASE_URL"] = postgres_url()
    settings = Settings.from_env(env)
    app = create_app(settings, policy=load_policy())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
    ) as http:
        yield http
    dispose_all()


async def test_concurrent_wrong_guesses_for_one_name_are_cut_at_the_limit(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifications = Verifications(review_ui.auth.password_matches)
    monkeypatch.setattr(review_ui.auth, "password_matches", verifications)
    limit = review_ui.auth.THROTTLE.max_failures
    name = f"alice-{uuid.uuid4().hex[:8]}"  # a name no earlier test on a shared store tried

    answers = await asyncio.gather(
        *(app_client.get("/api/reviews", auth=("alice", f"guess-{n}")) for n in range(GUESSES))
    )
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) <= limit, "no more guesses than the limit were answered"
    assert verifications.count <= limit, "no more passwords than the limit were checked"
    assert verifications.most_at_once <= review_ui.auth.MAX_CONCURRENT_VERIFICATIONS
    # Guesses that follow the burst still count against the same limit.
    for n in range(10):
        await app_client.get("/api/reviews", auth=(name, f"later-{n}"))
    assert verifications.count <= limit, "the burst and what followed stay within the limit"


async def test_a_burst_of_distinct_logins_verifies_a_few_passwords_at_a_time(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifications = Verifications(review_ui.auth.password_matches)
    monkeypatch.setattr(review_ui.auth, "password_matches", verifications)
    # A throttle loose enough to let every one of them through to the check.
    monkeypatch.setattr(review_ui.auth, "THROTTLE", LoginThrottle(max_failures=100))
    await asyncio.gather(
        *(app_client.get("/api/reviews", auth=(f"user{n}", "guess")) for n in range(12))
    )
    assert verifications.most_at_once <= review_ui.auth.MAX_CONCURRENT_VERIFICATIONS
