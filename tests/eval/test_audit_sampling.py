"""On the real Temporal dev server: every reviewer decision becomes a labelled example, a share
of auto-accepted outputs is audited without the run waiting, and an audit item is decided
through the API and the web form (recorded in the store; no workflow involved)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from policies.eval_settings import EvalPolicy
from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.policy_variants import gated
from tests.review_ui.conftest import ALICE, BOB, UiServer, form_value, login
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import decision_for, wait_for_pending
from tether.contracts import DecisionReceipt
from tether.core.settings import Settings
from tether.store.audit import events_for
from tether.store.audit_samples import audit_sampled
from tether.store.engine import get_engine
from tether.store.examples import LabelledExample, examples_for
from tether.store.reviews import ReviewItem, get_review
from tether.worker import running_worker

pytestmark = pytest.mark.integration


def audited(policy: TetherPolicy, rate: float) -> TetherPolicy:
    """Every output accepted automatically, and ``rate`` of them audited."""
    return gated(policy, accept=0.0).model_copy(update={"eval": EvalPolicy(audit_sample_rate=rate)})


def audit_items(settings: Settings) -> list[ReviewItem]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        query = select(ReviewItem).where(ReviewItem.reason == "audit_sample")
        return list(session.exec(query).all())


async def run_one(client: Client, settings: Settings, run_id: str, text: str) -> OneStepResult:
    return await client.execute_workflow(
        "test_one_step",
        Question(text=text),
        id=run_id,
        task_queue=settings.task_queue,
        result_type=OneStepResult,
    )


async def test_a_reviewers_edit_is_stored_as_a_labelled_example(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"label-{uuid.uuid4().hex[:8]}"
    gate_all = gated(policy, accept=1.0).model_copy(
        update={"eval": EvalPolicy(audit_sample_rate=0)}
    )
    async with running_worker(client, settings, policy=gate_all, extra_workflows=TEST_WORKFLOWS):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="Write to jane.doe@example.com: is the sky blue?", requester="alice"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        edited = {"answer": "Yes, on a clear day.", "sure": True}
        decision = decision_for(status, kind="edit", edited_output=edited, reason="too vague")
        await handle.execute_update("decide", decision, result_type=DecisionReceipt)
        assert (await handle.result()).disposition == "edited"
    with Session(get_engine(settings.resolved_database_url)) as session:
        [example] = examples_for(session, "test_one_step", "answer")
    assert example.run_id == run_id and example.decision == "edit"
    assert example.reviewer == "bob" and example.reason == "too vague"
    assert example.prompt_version == "1" and example.model == "simulated/cheap"
    assert example.input == {"text": "Write to [EMAIL_1]: is the sky blue?"}
    assert example.model_output is not None and "answer" in example.model_output
    assert example.corrected_output == edited
    assert status.steps[0].confidence is not None
    assert example.confidence_score == pytest.approx(status.steps[0].confidence.score)


async def test_the_policys_share_of_accepted_outputs_is_audited_and_no_run_waits(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    batch = uuid.uuid4().hex[:6]
    run_ids = [f"audit-{batch}-{n}" for n in range(12)]
    async with running_worker(
        client, settings, policy=audited(policy, 0.5), extra_workflows=TEST_WORKFLOWS
    ):
        results = await asyncio.gather(
            *(
                run_one(client, settings, run_id, f"Question {n}")
                for n, run_id in enumerate(run_ids)
            )
        )
    assert [r.status for r in results] == ["completed"] * len(run_ids)
    assert all(r.disposition == "accepted" for r in results)
    # The choice is a hash of run and step key: these are the runs a 50 % share picks.
    expected = {r for r in run_ids if audited_run(r, 0.5)}
    items = audit_items(settings)
    assert {item.run_id for item in items} == expected
    assert 0 < len(expected) < len(run_ids)
    assert all(item.status == "pending" and item.step == "answer" for item in items)
    assert all(item.confidence_score is not None for item in items)


def audited_run(run_id: str, rate: float) -> bool:
    return audit_sampled(run_id, f"{run_id}/answer/1/c1", rate)


@pytest.fixture
def audit_ui(settings: Settings, policy: TetherPolicy) -> Iterator[UiServer]:
    server = UiServer(create_app(settings, policy=audited(policy, 1.0))).start()
    yield server
    server.stop()


async def test_an_audit_item_is_decided_in_the_api_and_the_web_form_once(
    client: Client, settings: Settings, policy: TetherPolicy, audit_ui: UiServer
) -> None:
    run_ids = [f"audited-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    async with running_worker(
        client, settings, policy=audited(policy, 1.0), extra_workflows=TEST_WORKFLOWS
    ):
        for run_id in run_ids:
            assert (await run_one(client, settings, run_id, "Is water wet?")).status == "completed"
    by_run = {item.run_id: item for item in audit_items(settings)}
    api_item, web_item, raced = (by_run[r] for r in run_ids)

    async with httpx.AsyncClient(base_url=audit_ui.base_url, auth=BOB, timeout=30) as api:
        url = f"/api/reviews/{api_item.review_id}/decision"
        bad_edit = await api.post(
            url,
            json={"kind": "edit", "output_digest": api_item.output_digest, "edited_output": {}},
        )
        assert bad_edit.status_code == 409 and "invalid" in bad_edit.json()["message"]
        stale = await api.post(url, json={"kind": "approve", "output_digest": "sha256:0"})
        assert stale.status_code == 409 and "stale" in stale.json()["message"]
        rejected = await api.post(
            url,
            json={"kind": "reject", "output_digest": api_item.output_digest, "reason": "wrong"},
        )
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["accepted"] is True
        again = await api.post(
            url, json={"kind": "approve", "output_digest": api_item.output_digest}
        )
        assert again.status_code == 409 and "already decided" in again.json()["message"]

    # Two reviewers at once: exactly one verdict is recorded, the other is told.
    async with (
        httpx.AsyncClient(base_url=audit_ui.base_url, auth=ALICE, timeout=30) as alice,
        httpx.AsyncClient(base_url=audit_ui.base_url, auth=BOB, timeout=30) as bob,
    ):
        url = f"/api/reviews/{raced.review_id}/decision"
        verdicts = await asyncio.gather(
            alice.post(url, json={"kind": "approve", "output_digest": raced.output_digest}),
            bob.post(
                url, json={"kind": "reject", "output_digest": raced.output_digest, "reason": "no"}
            ),
        )
    assert sorted(v.status_code for v in verdicts) == [200, 409]

    async with httpx.AsyncClient(base_url=audit_ui.base_url, timeout=30) as web:
        csrf = await login(web, *ALICE)
        page = await web.get(f"/reviews/{web_item.review_id}")
        assert page.status_code == 200 and "how often auto-accept is right" in page.text
        form = {
            "csrf_token": csrf,
            "nonce": form_value(page.text, "nonce"),
            "output_digest": web_item.output_digest,
            "kind": "approve",
        }
        decided = await web.post(f"/reviews/{web_item.review_id}/decide", data=form)
        assert decided.status_code in (200, 303), decided.text[:500]

    with Session(get_engine(settings.resolved_database_url)) as session:
        api_after, web_after = (
            get_review(session, api_item.review_id),
            get_review(session, web_item.review_id),
        )
        examples = {e.run_id: e for e in session.exec(select(LabelledExample)).all()}
        kinds = [e.kind for e in events_for(session, run_id=run_ids[0])]
    assert api_after is not None and api_after.status == "rejected"
    assert api_after.reviewer == "bob" and api_after.decided_via == "api"
    assert web_after is not None and web_after.status == "approved"
    assert web_after.reviewer == "alice" and web_after.decided_via == "web"
    assert examples[run_ids[0]].decision == "reject"
    assert examples[run_ids[0]].asked_because == "audit_sample"
    assert examples[run_ids[1]].decision == "approve"
    assert kinds.count("review_decided") == 1
    assert examples[run_ids[2]].decision in ("approve", "reject")
