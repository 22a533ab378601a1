"""The OpenAPI document tells the truth: schemathesis generates requests for every operation of
``/openapi.json`` and sends them to the real app (uvicorn) with a real worker and the real
Temporal dev server behind it. No server error, no undocumented status, no body that breaks its
own schema. Examples are bounded so the run takes well under a minute."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.review_ui.conftest import BOB, UiServer, start_paused_run
from tether.core.settings import Settings

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
    )
)
MAX_EXAMPLES = 10


@pytest.fixture
def signed_ui(settings: Settings, review_policy: TetherPolicy) -> Iterator[UiServer]:
    """The app with a Slack signing secret, as in production: a request without Slack's
    signature is a documented 401, not the 503 of a deployment with Slack off."""
    with_slack = settings.model_copy(update={"slack_signing_secret": SecretStr("st-secret")})
    server = UiServer(create_app(with_slack, policy=review_policy)).start()
    yield server
    server.stop()


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_the_api_keeps_to_its_openapi_document(
    client: Client, settings: Settings, review_worker: Worker, signed_ui: UiServer, tmp_path: Path
) -> None:
    await start_paused_run(client, settings)  # one real review item to read
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{signed_ui.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "coverage,fuzzing",
        "--auth",
        ":".join(BOB),
        "--seed",
        "9",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
    ]
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=200,
        cwd=tmp_path,
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
