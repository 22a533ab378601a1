"""PII redaction end to end: a support ticket full of personal data runs through support_triage
on the real Temporal dev server, a worker whose provider is the fake OpenAI server and whose
notifier is the fake Slack, the review app served by uvicorn and a real SQLite store.

No original value may reach what the fake provider received, what the fake Slack received, any
row of any table, the captured logs or the run's Temporal history; yet the final answer read
through the API and the client carries the values (the policy restores them), and a reviewer
sees them only with a role in ``pii.reveal_to_roles``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlmodel import Session, SQLModel
from temporalio.client import Client

import tether.store.tables  # noqa: F401  (every table on the metadata, to dump them all)
from activities.slack import SlackNotifier
from policies.guard_settings import PiiGuardSettings
from policies.models import GateThresholds, TetherPolicy
from review_ui.app import create_app
from tests.conftest import make_settings
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.slack_api import FakeSlack
from tests.policy_variants import for_workflow, routed, step_policy
from tests.review_ui.conftest import login
from tether.client import run_result
from tether.contracts import RunStatus
from tether.core.settings import Settings
from tether.store.audit import AuditEvent
from tether.store.engine import dispose_all, get_engine
from tether.worker import running_worker

pytestmark = pytest.mark.integration

ALICE = ("alice", "alice-dev")
"""reviewer and support: may start and decide support_triage, not see personal data."""
BOB = ("bob", "bob-dev")
"""reviewer and lead: ``lead`` is in the default policy's ``pii.reveal_to_roles``."""
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5-tether-pii-test"
GPT = "openai/gpt-4o-mini"

ORIGINALS = {
    "EMAIL": "jane.doe@example.com",
    "PHONE": "+44 20 7946 0958",
    "CARD": "4111 1111 1111 1111",
    "IBAN": "DE89 3704 0044 0532 0130 00",
    "US_SSN": "536-22-1234",
    "UK_NINO": "JG 10 37 23 A",
    "DE_TAX_ID": "86095742719",
    "ES_DNI": "12345678Z",
    "FR_INSEE": "1 85 05 78 006 084 91",
    "IPV4": "203.0.113.42",
    "IPV6": "2001:db8::8a2e:370:7334",
}
TICKET = {
    "subject": f"Charged twice on card {ORIGINALS['CARD']}",
    "body": (
        f"Hello, this is Jane ({ORIGINALS['EMAIL']}, {ORIGINALS['PHONE']}). My card "
        f"{ORIGINALS['CARD']} was charged twice for order A-1001. Please refund to IBAN "
        f"{ORIGINALS['IBAN']}. SSN {ORIGINALS['US_SSN']}, NINO {ORIGINALS['UK_NINO']}, "
        f"Steuer-ID {ORIGINALS['DE_TAX_ID']}, DNI {ORIGINALS['ES_DNI']}, INSEE "
        f"{ORIGINALS['FR_INSEE']}. I logged in from {ORIGINALS['IPV4']} and "
        f"{ORIGINALS['IPV6']}. Write to {ORIGINALS['EMAIL']} again if needed."
    ),
    "customer_id": "cust-1001",
}
REPLY = (
    "Dear customer, we refund the duplicate charge on card [CARD_1] to IBAN [IBAN_1] and "
    "confirm by email to [EMAIL_1] or by phone on [PHONE_1]."
)
"""What the model answers: it saw placeholders only, and uses them as a model would."""
SCRIPTED = [
    {"category": "billing", "priority": "high", "rationale": "Card [CARD_1] charged twice."},
    {
        "order_id": "A-1001",
        "product": None,
        "sentiment": "negative",
        "customer_asks": ["refund to [IBAN_1]"],
    },
    {"reply": REPLY, "needs_followup": False},
]


def triage_policy(
    policy: TetherPolicy, pii: PiiGuardSettings | None = None, *, review_classify: bool = True
) -> TetherPolicy:
    """support_triage on the fake OpenAI model, one call per step (no samples, no judge):
    classify goes to review (unless not ``review_classify``), extract and draft_reply pass."""
    review_all = GateThresholds(accept=1.0, review=0.0, escalate=0.0)
    pass_all = GateThresholds(accept=0.0, review=0.0, escalate=0.0)
    one_call = {"samples": 1, "judge": False}
    classify = review_all if review_classify else pass_all
    triage = policy.workflows["support_triage"].model_copy(
        update={
            "steps": {
                "classify": step_policy(thresholds=classify, **one_call),
                "extract": step_policy(thresholds=pass_all, **one_call),
                "draft_reply": step_policy(thresholds=pass_all, **one_call),
            }
        }
    )
    changed = for_workflow(routed(policy, [GPT]), "support_triage", triage)
    return changed if pii is None else changed.model_copy(update={"pii": pii})


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def pii_settings(
    tmp_path: Path,
    temporal_address: str,
    fake_slack: FakeSlack,
    provider_server: FakeProviderServer,
) -> Iterator[Settings]:
    yield make_settings(
        tmp_path,
        temporal_address,
        OPENAI_API_KEY=provider_server.openai_api_key,
        OPENAI_BASE_URL=provider_server.openai_base_url,
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
    )
    dispose_all()


@asynccontextmanager
async def triage_stack(
    client: Client, settings: Settings, policy: TetherPolicy
) -> AsyncIterator[str]:
    """A worker notifying the fake Slack, and the review app; yields the app's URL."""
    async with (
        running_worker(client, settings, policy=policy, notifier=SlackNotifier(settings)),
        served(create_app(settings, client=client, policy=policy)) as url,
    ):
        yield url


async def start_triage(
    url: str, provider: FakeProviderServer, scripted: list[dict[str, Any]] = SCRIPTED
) -> str:
    for answer in scripted:
        provider.script(answer=answer)
    async with httpx.AsyncClient(base_url=url, auth=ALICE, timeout=30) as http:
        started = await http.post("/api/runs", json={"workflow": "support_triage", "input": TICKET})
    assert started.status_code == 201, started.text
    run_id: str = started.json()["run_id"]
    return run_id


async def wait_status(client: Client, run_id: str, done: Any, within_s: float = 30) -> RunStatus:
    handle = client.get_workflow_handle(run_id)
    for _ in range(int(within_s / 0.05)):
        status = await handle.query("status", result_type=RunStatus)
        if done(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached the state: {status}")


# --- where the values must never be ---------------------------------------------------------


def provider_received(provider: FakeProviderServer) -> str:
    return json.dumps([request.json for request in provider.requests], ensure_ascii=False)


def slack_received(slack: FakeSlack) -> str:
    return json.dumps([call.args for call in slack.calls], ensure_ascii=False, default=str)


def store_rows(settings: Settings) -> str:
    """Every row of every table, as text."""
    rows: list[str] = []
    with Session(get_engine(settings.resolved_database_url)) as session:
        for table in SQLModel.metadata.sorted_tables:
            rows.extend(repr(tuple(row)) for row in session.execute(select(table)))
    return "\n".join(rows)


async def history_text(client: Client, run_id: str) -> str:
    """The run's fetched history as JSON, with every payload's data decoded next to it."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    raw = history.to_json()
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and "metadata" in node:
                decoded.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(raw))
    assert decoded, "the history holds payloads"
    return raw + "\n" + "\n".join(decoded)


def leaked(where: str) -> list[str]:
    return [kind for kind, value in ORIGINALS.items() if value in where]


# --- the tests --------------------------------------------------------------------------------


async def test_personal_data_reaches_no_provider_slack_store_log_or_history_yet_is_restored(
    client: Client,
    pii_settings: Settings,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    triage = triage_policy(policy)
    async with triage_stack(client, pii_settings, triage) as url:
        run_id = await start_triage(url, provider_server)
        paused = await wait_status(client, run_id, lambda s: s.pending is not None)
        assert paused.pending is not None
        review_id = paused.pending.review_id
        await fake_slack.wait_for("chat.postMessage")
        async with (
            httpx.AsyncClient(base_url=url, auth=ALICE, timeout=30) as alice,
            httpx.AsyncClient(base_url=url, auth=BOB, timeout=30) as bob,
        ):
            # A reviewer without a revealing role sees placeholders; a lead sees the values.
            hidden = (await alice.get(f"/api/reviews/{review_id}")).json()
            shown = (await bob.get(f"/api/reviews/{review_id}")).json()
            assert leaked(json.dumps(hidden, ensure_ascii=False)) == []
            assert "[EMAIL_1]" in hidden["input_preview"]["body"]
            assert "[CARD_1]" in hidden["output"]["rationale"]
            assert ORIGINALS["EMAIL"] in shown["input_preview"]["body"]
            assert ORIGINALS["IBAN"] in shown["input_preview"]["body"]
            assert shown["output"]["rationale"] == f"Card {ORIGINALS['CARD']} charged twice."
            assert shown["output_digest"] == hidden["output_digest"], "one output is decided"
        # The same on the review page, signed in through the login form.
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as alice_page,
            httpx.AsyncClient(base_url=url, timeout=30) as bob_page,
        ):
            await login(alice_page, *ALICE)
            await login(bob_page, *BOB)
            alice_sees = (await alice_page.get(f"/reviews/{review_id}")).text
            bob_sees = (await bob_page.get(f"/reviews/{review_id}")).text
        assert "[IBAN_1]" in alice_sees and leaked(alice_sees) == []
        assert "appears as placeholders" in alice_sees
        assert ORIGINALS["IBAN"] in bob_sees and ORIGINALS["EMAIL"] in bob_sees
        assert "Card [CARD_1] charged twice." in bob_sees, "the edit form keeps placeholders"
        async with (
            httpx.AsyncClient(base_url=url, auth=ALICE, timeout=30) as alice,
            httpx.AsyncClient(base_url=url, auth=BOB, timeout=30) as bob,
        ):
            decided = await bob.post(
                f"/api/reviews/{review_id}/decision",
                json={"kind": "approve", "output_digest": shown["output_digest"]},
            )
            assert decided.status_code in (200, 202), decided.text
            await wait_status(client, run_id, lambda s: s.state == "completed")
            status = (await bob.get(f"/api/runs/{run_id}")).json()
            hidden = (await alice.get(f"/api/runs/{run_id}")).json()
        through_client = await run_result(client, run_id, settings=pii_settings, policy=triage)
        unrestored = await run_result(
            client,
            run_id,
            settings=pii_settings,
            policy=triage.model_copy(update={"pii": PiiGuardSettings(restore_in_output=False)}),
        )

    # The final answer, read through the API and the client, carries the values.
    restored = REPLY.replace("[CARD_1]", ORIGINALS["CARD"]).replace("[IBAN_1]", ORIGINALS["IBAN"])
    restored = restored.replace("[EMAIL_1]", ORIGINALS["EMAIL"])
    restored = restored.replace("[PHONE_1]", ORIGINALS["PHONE"])
    assert status["state"] == "completed"
    assert status["result"]["reply"] == restored
    # Through the API only a role that may reveal gets the values back: alice is not a lead.
    assert hidden["result"]["reply"] == REPLY
    assert through_client["reply"] == restored
    assert through_client["facts"]["customer_asks"] == [f"refund to {ORIGINALS['IBAN']}"]
    assert unrestored["reply"] == REPLY, "without restore_in_output the placeholders stay"

    # Each step records which kinds its prompt carried as placeholders, never a value.
    guards = {step["name"]: step["guards"] for step in status["steps"]}
    classify_pii = [g for g in guards["classify"] if g["guard"] == "pii"]
    assert len(classify_pii) == 1 and classify_pii[0]["outcome"] == "redacted"
    assert classify_pii[0]["detail"] == (
        "CARD x2, EMAIL x2, DE_TAX_ID x1, ES_DNI x1, FR_INSEE x1, IBAN x1, IPV4 x1, IPV6 x1, "
        "PHONE x1, UK_NINO x1, US_SSN x1"
    )
    with Session(get_engine(pii_settings.resolved_database_url)) as session:
        audit = session.execute(
            select(AuditEvent).where(AuditEvent.run_id == run_id, AuditEvent.kind == "pii_redacted")
        ).scalars()
        details = [event.detail for event in audit]
    assert [d["where"] for d in details] == ["input"]
    assert details[0]["counts"] == {kind: 1 for kind in ORIGINALS} | {"EMAIL": 2, "CARD": 2}

    # ... and no original value is anywhere it must not be.
    assert len(provider_server.requests) == 3
    assert "[IBAN_1]" in provider_received(provider_server)
    assert leaked(provider_received(provider_server)) == []
    assert fake_slack.calls_to("chat.postMessage")
    assert leaked(slack_received(fake_slack)) == []
    assert run_id in store_rows(pii_settings)
    assert leaked(store_rows(pii_settings)) == []
    assert caplog.records
    assert leaked(caplog.text) == []
    assert leaked(await history_text(client, run_id)) == []


async def test_with_redaction_off_the_values_reach_provider_store_and_history(
    client: Client,
    pii_settings: Settings,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    """The checks above find a value when it is there: with the guard off, it is."""
    triage = triage_policy(policy, PiiGuardSettings(enabled=False))
    async with triage_stack(client, pii_settings, triage) as url:
        run_id = await start_triage(url, provider_server)
        await wait_status(client, run_id, lambda s: s.pending is not None)
        history = await history_text(client, run_id)
    assert set(leaked(provider_received(provider_server))) == set(ORIGINALS)
    assert set(leaked(store_rows(pii_settings))) == set(ORIGINALS)
    assert set(leaked(history)) == set(ORIGINALS)


async def test_personal_data_the_model_writes_is_redacted_before_history_and_the_next_prompt(
    client: Client,
    pii_settings: Settings,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    written = {"PHONE": "+1 415 555 0100", "EMAIL": "j.doe@corp.example.com"}
    asks = f"call back on {written['PHONE']} or mail {written['EMAIL']}"
    extract = SCRIPTED[1] | {"customer_asks": [asks]}
    draft = {"reply": "We will call [PHONE_2] and write to [EMAIL_2].", "needs_followup": True}
    triage = triage_policy(policy, review_classify=False)
    async with triage_stack(client, pii_settings, triage) as url:
        run_id = await start_triage(url, provider_server, [SCRIPTED[0], extract, draft])
        result = await run_result(client, run_id, settings=pii_settings, policy=triage)
        history = await history_text(client, run_id)

    # The values the model wrote got the run's next placeholders, and the next prompt them.
    draft_prompt = json.dumps(provider_server.requests[2].json)
    assert "call back on [PHONE_2] or mail [EMAIL_2]" in draft_prompt
    assert not [value for value in written.values() if value in draft_prompt]
    assert not [value for value in written.values() if value in history]
    assert not [value for value in written.values() if value in store_rows(pii_settings)]
    extract_guards = [g for g in result["steps"][1]["guards"] if g["guard"] == "pii"]
    assert [(g["outcome"], g["detail"]) for g in extract_guards][-1] == (
        "redacted_output",
        "EMAIL x1, PHONE x1",
    )
    # Read back, the output carries them again.
    assert result["facts"]["customer_asks"] == [asks]
    assert result["reply"] == f"We will call {written['PHONE']} and write to {written['EMAIL']}."


async def test_personal_data_a_reviewer_types_into_an_edit_reaches_the_run_as_a_placeholder(
    client: Client,
    pii_settings: Settings,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    typed = "refunds.desk@corp.example.com"
    edit = {"category": "billing", "priority": "high", "rationale": f"Refunds go via {typed}"}
    async with triage_stack(client, pii_settings, triage_policy(policy)) as url:
        run_id = await start_triage(url, provider_server)
        paused = await wait_status(client, run_id, lambda s: s.pending is not None)
        assert paused.pending is not None
        review_id = paused.pending.review_id
        async with (
            httpx.AsyncClient(base_url=url, auth=ALICE, timeout=30) as alice,
            httpx.AsyncClient(base_url=url, auth=BOB, timeout=30) as bob,
        ):
            decided = await bob.post(
                f"/api/reviews/{review_id}/decision",
                json={
                    "kind": "edit",
                    "output_digest": paused.pending.output_digest,
                    "edited_output": edit,
                },
            )
            assert decided.status_code in (200, 202), decided.text
            await wait_status(client, run_id, lambda s: s.state == "completed")
            hidden = (await alice.get(f"/api/reviews/{review_id}")).json()
            shown = (await bob.get(f"/api/reviews/{review_id}")).json()
        history = await history_text(client, run_id)

    assert hidden["decided_output"]["rationale"] == "Refunds go via [EMAIL_2]"
    assert shown["decided_output"]["rationale"] == f"Refunds go via {typed}"
    assert typed not in history
    assert typed not in store_rows(pii_settings)


PRESIDIO_ONLY = {
    "UK_NHS": "4010232137",
    "CRYPTO": "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    "US_PASSPORT": "912803456",
}
"""Kinds only the ``presidio`` detector finds (the extra, installed by ``make install``)."""


async def test_a_policy_choosing_presidio_keeps_its_kinds_from_provider_store_and_history(
    client: Client,
    pii_settings: Settings,
    policy: TetherPolicy,
    provider_server: FakeProviderServer,
) -> None:
    ticket = TICKET | {
        "body": (
            f"My passport is {PRESIDIO_ONLY['US_PASSPORT']} and NHS number "
            f"{PRESIDIO_ONLY['UK_NHS']}; refund in bitcoin to {PRESIDIO_ONLY['CRYPTO']}."
        )
    }
    answers = [
        SCRIPTED[0],
        SCRIPTED[1] | {"customer_asks": ["refund to [CRYPTO_1]"]},
        {"reply": "We refund to [CRYPTO_1].", "needs_followup": False},
    ]
    pii = PiiGuardSettings(detectors=("builtin", "presidio"))
    triage = triage_policy(policy, pii, review_classify=False)
    async with triage_stack(client, pii_settings, triage) as url:
        for answer in answers:
            provider_server.script(answer=answer)
        async with httpx.AsyncClient(base_url=url, auth=ALICE, timeout=30) as http:
            started = await http.post(
                "/api/runs", json={"workflow": "support_triage", "input": ticket}
            )
        assert started.status_code == 201, started.text
        run_id = started.json()["run_id"]
        result = await run_result(client, run_id, settings=pii_settings, policy=triage)
        history = await history_text(client, run_id)

    def found(where: str) -> list[str]:
        return [kind for kind, value in PRESIDIO_ONLY.items() if value in where]

    prompts = provider_received(provider_server)
    assert "[UK_NHS_1]" in prompts and "[CRYPTO_1]" in prompts and "[US_PASSPORT_1]" in prompts
    assert found(prompts) == []
    assert found(history) == []
    assert found(store_rows(pii_settings)) == []
    # Read back through the client, the output carries the value again.
    assert result["reply"] == f"We refund to {PRESIDIO_ONLY['CRYPTO']}."
