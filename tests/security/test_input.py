"""Bad input, tried as an attacker or a careless caller would: bodies over the limit, pages past
the end, documents over Temporal's payload limit, invalid UTF-8 and deep nesting. Each gets one
clear error and changes nothing; error bodies have one shape, and the OpenAPI document says so."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.conftest import make_settings
from tests.histories.record import _decide_all as decide_all
from tests.review_ui.conftest import BOB, UiServer, pause_at
from tests.test_cli import tether
from tether.core.errors import InputError
from tether.core.settings import Settings
from tether.run_input import MAX_INPUT_BYTES, MAX_INPUT_DEPTH, parse_run_input
from tether.worker import running_worker
from workflows.document_summary_steps import Document
from workflows.support_triage_steps import Ticket

UNREACHABLE_TEMPORAL = "127.0.0.1:9"  # nothing listens: the app must answer without Temporal


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        UNREACHABLE_TEMPORAL,
        TETHER_MAX_BODY_BYTES="65536",
        SLACK_SIGNING_SECRET="s3cret",
        TETHER_SLACK_MAX_BODY_BYTES="4096",
    )


@pytest.fixture
def server(app_settings: Settings, policy: TetherPolicy) -> Iterator[UiServer]:
    ui = UiServer(create_app(app_settings, policy=policy)).start()
    yield ui
    ui.stop()


def _raw_request(base_url: str, head: str) -> bytes:
    """Send only a request's head (no body) and read the answer: a server that waited for the
    declared body before answering would time out here."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


# --- item 7: request bodies ------------------------------------------------------------------


def test_declared_body_over_the_limit_is_refused_before_it_is_read(server: UiServer) -> None:
    """No credentials and no body sent: the answer is 413 at once, not 401 after reading."""
    answer = _raw_request(
        server.base_url,
        "POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 10000000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"detail"' in answer


def test_streamed_body_over_the_limit_is_cut_off(server: UiServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": "support_triage", "input": {"subject": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'"}}'

    with httpx.Client(base_url=server.base_url, auth=BOB, timeout=10) as http:
        answer = http.post("/api/runs", content=chunks(), headers={"content-type": "json"})
    assert answer.status_code == 413
    assert answer.json() == {"detail": answer.json()["detail"]}
    assert "65536-byte limit" in answer.json()["detail"]


def test_slack_body_over_its_smaller_limit_is_refused_before_the_signature_check(
    server: UiServer,
) -> None:
    """5 KiB is under the API limit but over Slack's: 413, not 401 for the missing signature."""
    body = "payload=" + "x" * 5000
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        answer = http.post(
            "/slack/interactions",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 413
    assert "4096-byte limit" in answer.json()["detail"]


def test_body_under_the_limit_still_reaches_authentication(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        answer = http.post("/api/runs", json={"workflow": "support_triage", "input": {}})
    assert answer.status_code == 401


# --- item 7: pages, nesting; item 9: one error shape ----------------------------------------


@pytest.mark.parametrize("query", ["page=1152921504606846977", "page=100001", "per_page=201"])
def test_page_past_the_bound_is_a_clear_422(server: UiServer, query: str) -> None:
    with httpx.Client(base_url=server.base_url, auth=BOB, timeout=10) as http:
        answer = http.get(f"/api/reviews?{query}")
    assert answer.status_code == 422
    body = answer.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert body["detail"].startswith("query.")


def test_last_page_is_served(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url, auth=BOB, timeout=10) as http:
        answer = http.get("/api/reviews?page=100000&per_page=200&status=all")
    assert answer.status_code == 200
    assert answer.json()["items"] == []


@pytest.mark.parametrize("depth", [MAX_INPUT_DEPTH + 1, 5_000, 30_000])
def test_deeply_nested_api_input_is_a_422(server: UiServer, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"workflow": "support_triage", "input": {"subject": "s", "body": "b", "x": %s}}'
    with httpx.Client(base_url=server.base_url, auth=BOB, timeout=10) as http:
        answer = http.post(
            "/api/runs", content=body % nested, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422, answer.text[:300]
    assert set(answer.json()) == {"detail"}


def test_validation_errors_have_the_one_error_shape(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url, auth=BOB, timeout=10) as http:
        answer = http.post("/api/runs", json={"input": {}})
    assert answer.status_code == 422
    assert answer.json() == {"detail": "body.workflow: Field required"}


def test_openapi_documents_every_error_with_the_one_body(server: UiServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        document = http.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["ErrorBody"]["required"] == ["detail"]
    api_operations = [
        (path, method, op)
        for path, methods in document["paths"].items()
        if path.startswith("/api/")
        for method, op in methods.items()
    ]
    assert api_operations
    for path, method, op in api_operations:
        responses = op["responses"]
        for code in ("401", "422"):
            assert code in responses, f"{method} {path} does not document {code}"
        for code, response in responses.items():
            if int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
    assert "413" in document["paths"]["/api/runs"]["post"]["responses"]
    assert "409" in document["paths"]["/api/runs"]["post"]["responses"]
    assert "503" in document["paths"]["/api/runs/{run_id}"]["get"]["responses"]
    assert "404" in document["paths"]["/api/reviews/{review_id}"]["get"]["responses"]


# --- item 7: run input (CLI and API share parse_run_input) ------------------------------------


def test_input_file_with_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ticket.json"
    path.write_bytes(b'{"subject": "Refund", "body": "caf\xe9 \xff"}')
    with pytest.raises(InputError, match=r"is not UTF-8 text \(invalid byte at offset 34\)"):
        parse_run_input("support_triage", f"@{path}")


@pytest.mark.parametrize("depth", [MAX_INPUT_DEPTH + 1, 100_000])
def test_deeply_nested_input_is_one_line(depth: int) -> None:
    raw = '{"subject": "s", "body": "b", "x": %s}' % ("[" * depth + "]" * depth)
    with pytest.raises(InputError, match="more than 64 levels deep"):
        parse_run_input("support_triage", raw)


def test_document_over_the_payload_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"document": "word " * (MAX_INPUT_BYTES // 5 + 1)}))
    with pytest.raises(InputError, match=r"over the 1500000-byte limit of a run's input"):
        parse_run_input("document_summary", f"@{path}")


def test_document_under_the_limit_is_accepted() -> None:
    raw = json.dumps({"document": "word " * 200_000})
    assert parse_run_input("document_summary", raw) is not None


@pytest.mark.integration
def test_cli_refuses_bad_input_files_with_one_line_and_exit_2(
    tmp_path: Path, settings: Settings
) -> None:
    bad_utf8 = tmp_path / "bad.json"
    bad_utf8.write_bytes(b'{"subject": "\xff", "body": "b"}')
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"document": "x" * 2_500_000}))
    for workflow, path in (("support_triage", bad_utf8), ("document_summary", big)):
        done = tether(settings, "run", workflow, "--input", f"@{path}")
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


# --- item 7: every activity a run schedules retries a bounded number of times ------------------


@pytest.mark.integration
async def test_every_activity_of_a_reviewed_run_has_a_bounded_retry_policy(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    """open_review, record_decision and prepare_document retried without bound before."""
    paused = pause_at(pause_at(policy, "classify"), "final_summary", "document_summary")
    async with running_worker(client, settings, policy=paused):
        triage = f"triage-{uuid.uuid4().hex[:8]}"
        await client.start_workflow(
            "support_triage",
            Ticket(subject="Refund", body="Refund order 7 please."),
            id=triage,
            task_queue=settings.task_queue,
        )
        summary = f"summary-{uuid.uuid4().hex[:8]}"
        await client.start_workflow(
            "document_summary",
            Document(document="A short report. " * 50, title="Report"),
            id=summary,
            task_queue=settings.task_queue,
        )
        for run_id in (triage, summary):
            await asyncio.wait_for(decide_all(client, run_id), 60)
    scheduled: dict[str, int] = {}
    for run_id in (triage, summary):
        history = await client.get_workflow_handle(run_id).fetch_history()
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[attrs.activity_type.name] = attrs.retry_policy.maximum_attempts
    for name in ("tether.open_review", "tether.record_decision", "tether.prepare_document"):
        assert name in scheduled, sorted(scheduled)
    unbounded = sorted(name for name, attempts in scheduled.items() if attempts == 0)
    assert unbounded == [], f"retried without bound: {unbounded}"
