"""Shared fixtures: one real Temporal dev server per session; per test a fresh store, task queue
and worker. Real model providers and Slack are never reachable from tests: their keys are
removed from the environment, and tests point providers at local fakes in tests/fakes/."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from policies.loader import load_policy
from policies.models import TetherPolicy
from tests.fakes.provider_server import FakeProviderServer
from tether.client import connect
from tether.core.settings import Settings
from tether.store.engine import dispose_all
from tether.temporal_server import DevServer
from tether.worker import running_worker

REAL_SERVICE_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "TETHER_POLICY_FILE",
    "TETHER_DATABASE_URL",
)

for _var in REAL_SERVICE_VARS:  # forbid real model and Slack requests for the whole session
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = DevServer(tmp_path_factory.mktemp("temporal") / "temporal.db")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def temporal_address(temporal_server: DevServer) -> str:
    return temporal_server.address


def make_settings(home: Path, temporal_address: str, **overrides: str) -> Settings:
    env = {
        "TETHER_HOME": str(home),
        "TETHER_TEMPORAL_ADDRESS": temporal_address,
        "TETHER_TASK_QUEUE": f"test-{uuid.uuid4().hex[:10]}",
        "TETHER_SIM_LATENCY_MS": "0",
        "TETHER_SIM_FAILURE_RATE": "0",
    }
    env.update(overrides)
    return Settings.from_env(env)


@pytest.fixture
def settings(tmp_path: Path, temporal_address: str) -> Iterator[Settings]:
    yield make_settings(tmp_path, temporal_address)
    dispose_all()


@pytest.fixture
def policy() -> TetherPolicy:
    """The embedded default policy; tests derive variants with ``model_copy``. The step cache is
    off here, so a test that runs the same input twice still calls the model twice, and so is
    audit sampling, so no test's queue gets a sampled audit item it did not ask for; their own
    tests (tests/workflows/test_cache.py, tests/eval/test_audit_sampling.py) turn them on."""
    default = load_policy()
    return default.model_copy(
        update={
            "cache": default.cache.model_copy(update={"enabled": False}),
            "eval": default.eval.model_copy(update={"audit_sample_rate": 0.0}),
        }
    )


@pytest.fixture
async def client(settings: Settings) -> Client:
    return await connect(settings)


@pytest.fixture
async def worker(client: Client, settings: Settings, policy: TetherPolicy) -> AsyncIterator[Worker]:
    async with running_worker(client, settings, policy=policy) as running:
        yield running


@pytest.fixture
def provider_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server
