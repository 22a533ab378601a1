"""The step cache end to end: real Temporal server, real worker, the real all-MiniLM-L6-v2.

Answers come from the simulated models; a miss shows as ledger rows (the model was called), a
hit as a cache guard event on the step, no ledger row and $0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from policies.eval_settings import EvalPolicy
from policies.loader import load_policy
from policies.models import TetherPolicy
from tests.fakes.provider_server import FakeProviderServer
from tests.policy_variants import gated, routed
from tests.workflows.cache_workflows import CachedQuestion, CachedStep
from tests.workflows.sample_workflows import OneStepResult
from tests.workflows.test_engine import (
    GPT,
    decision_for,
    ledger,
    openai_settings,
    wait_for_pending,
)
from tether.contracts import DecisionReceipt, GuardEvent, RunStatus
from tether.core.settings import Settings
from tether.store.audit import events_for
from tether.store.audit_samples import decide_audit_sample
from tether.store.cache import CacheEntry
from tether.store.engine import get_engine
from tether.store.ledger import BudgetReservation
from tether.store.reviews import ReviewItem
from tether.worker import running_worker

pytestmark = pytest.mark.integration

QUESTION = "How do I reset my password?"
PARAPHRASE = "I forgot my password, how can I reset it?"  # cosine 0.937 to QUESTION
OTHER = "How do I reset my router?"  # 0.53: a different question


@pytest.fixture
def cached_policy() -> Iterator[TetherPolicy]:
    """The embedded default policy as shipped (cache on), every answer accepted, and reused
    without the judge's check of a first reuse (tested on its own below)."""
    policy = load_policy()
    assert policy.cache.enabled and policy.cache.semantic and policy.cache.embedder == "local"
    yield unchecked(gated(policy, accept=0.0))


def unchecked(policy: TetherPolicy) -> TetherPolicy:
    cache = policy.cache.model_copy(update={"verify_reuse": False})
    return policy.model_copy(update={"cache": cache})


async def start_cached(
    client: Client, settings: Settings, text: str, *, queue: str | None = None, **fields: str
) -> tuple[str, Any]:
    run_id = f"cache-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "test_cached_step",
        CachedQuestion(text=text, **fields),
        id=run_id,
        task_queue=queue or settings.task_queue,
        result_type=OneStepResult,
    )
    return run_id, handle


async def ask(
    client: Client, settings: Settings, text: str, *, queue: str | None = None, **fields: str
) -> tuple[str, OneStepResult, RunStatus]:
    run_id, handle = await start_cached(client, settings, text, queue=queue, **fields)
    result = await handle.result()
    status = await handle.query("status", result_type=RunStatus)
    return run_id, result, status


def cache_events(status: RunStatus) -> list[GuardEvent]:
    return [g for g in status.steps[0].guards if g.guard == "cache"]


def entries(settings: Settings) -> list[CacheEntry]:
    with Session(get_engine(settings.resolved_database_url)) as session:
        return list(session.exec(select(CacheEntry).order_by(CacheEntry.id)))


async def test_repeats_and_paraphrases_are_served_from_the_cache_for_nothing(
    client: Client, settings: Settings, cached_policy: TetherPolicy
) -> None:
    async with running_worker(client, settings, policy=cached_policy, extra_workflows=[CachedStep]):
        first_id, first, first_status = await ask(client, settings, QUESTION)
        exact_id, exact, exact_status = await ask(client, settings, QUESTION)
        para_id, para, para_status = await asyncio.wait_for(
            ask(client, settings, PARAPHRASE), timeout=60
        )
        other_id, _, other_status = await ask(client, settings, OTHER)

    assert first.status == "completed" and first.cost_usd > 0
    assert cache_events(first_status) == [] and ledger(settings, first_id)

    # The same question: an exact hit, no model call, no ledger row, $0, the same answer.
    assert [(g.outcome, g.value) for g in cache_events(exact_status)] == [("exact_hit", 1.0)]
    assert exact.answer == first.answer and exact.cost_usd == 0.0
    assert ledger(settings, exact_id) == []
    assert exact_status.steps[0].cost_usd == 0.0

    # A paraphrase: a semantic hit, with its similarity.
    (hit,) = cache_events(para_status)
    assert hit.outcome == "semantic_hit" and hit.value is not None
    assert cached_policy.cache.threshold <= hit.value < 1.0
    assert para.answer == first.answer and para.cost_usd == 0.0 and ledger(settings, para_id) == []

    # A different question is a miss.
    assert cache_events(other_status) == [] and ledger(settings, other_id)

    with Session(get_engine(settings.resolved_database_url)) as session:
        hits = [e for e in events_for(session, run_id=exact_id) if e.kind == "cache_hit"]
        assert [(e.detail["outcome"], e.detail["cost_usd"]) for e in hits] == [("exact_hit", 0.0)]
        # The hit's hold was released, not charged.
        holds = session.exec(
            select(BudgetReservation).where(BudgetReservation.run_id == exact_id)
        ).all()
        assert holds and all(h.settled for h in holds)
    assert len(entries(settings)) == 2  # the first answer and the other question's


async def test_another_tenant_prompt_version_or_a_side_effecting_step_misses(
    client: Client, settings: Settings, cached_policy: TetherPolicy
) -> None:
    async with running_worker(client, settings, policy=cached_policy, extra_workflows=[CachedStep]):
        await ask(client, settings, QUESTION, tenant="acme")
        misses = [
            await ask(client, settings, QUESTION, tenant="globex"),
            await ask(client, settings, QUESTION, tenant="acme", variant="v2"),
            await ask(client, settings, QUESTION, tenant="acme", variant="side"),
            await ask(client, settings, QUESTION, tenant="acme", variant="side"),
        ]
        _, _, hit = await ask(client, settings, QUESTION, tenant="acme")

    for run_id, result, status in misses:
        assert cache_events(status) == [], status.steps[0].guards
        assert result.cost_usd > 0 and ledger(settings, run_id)
    assert [g.outcome for g in cache_events(hit)] == ["exact_hit"]
    # A side-effecting step's answers are never stored.
    stored = entries(settings)
    assert sorted((e.tenant, e.prompt_version) for e in stored) == [
        ("acme", "test.cached@1"),
        ("acme", "test.cached@2"),
        ("globex", "test.cached@1"),
    ]


async def test_a_rejected_answer_is_evicted_and_kept_for_the_learned_rule(
    client: Client, settings: Settings
) -> None:
    reviewed = gated(load_policy(), accept=1.0)  # every answer goes to a reviewer
    async with running_worker(client, settings, policy=reviewed, extra_workflows=[CachedStep]):
        run_id, handle = await start_cached(client, settings, QUESTION)
        pending = await wait_for_pending(client, run_id)
        (entry,) = entries(settings)
        assert entry.evicted_at is None and entry.verdict is None
        await handle.execute_update(
            "decide",
            decision_for(pending, kind="reject", reason="wrong steps"),
            result_type=DecisionReceipt,
        )
        assert (await handle.result()).status == "rejected"

        # The same question again: the rejected answer is not served; the model is asked.
        again_id, again = await start_cached(client, settings, QUESTION)
        second = await wait_for_pending(client, again_id)
        assert cache_events(second) == [] and ledger(settings, again_id)
        await again.execute_update("decide", decision_for(second), result_type=DecisionReceipt)
        assert (await again.result()).status == "completed"

    rejected, approved = entries(settings)
    assert rejected.verdict == "rejected" and rejected.evicted_at is not None
    assert rejected.embedding is not None  # kept for the learned routing rule
    assert approved.verdict == "approved" and approved.approved and approved.evicted_at is None
    with Session(get_engine(settings.resolved_database_url)) as session:
        assert "cache_evicted" in [e.kind for e in events_for(session)]


async def test_two_workers_share_hits_through_the_store(
    client: Client, settings: Settings, cached_policy: TetherPolicy
) -> None:
    queue_a, queue_b = f"{settings.task_queue}-a", f"{settings.task_queue}-b"
    async with AsyncExitStack() as stack:
        for queue in (queue_a, queue_b):
            await stack.enter_async_context(
                running_worker(
                    client,
                    settings,
                    policy=cached_policy,
                    task_queue=queue,
                    extra_workflows=[CachedStep],
                )
            )
        first_id, _, first = await ask(client, settings, QUESTION, queue=queue_a)
        exact_id, _, exact = await ask(client, settings, QUESTION, queue=queue_b)
        para_id, _, para = await ask(client, settings, PARAPHRASE, queue=queue_b)

    assert cache_events(first) == [] and ledger(settings, first_id)
    assert [g.outcome for g in cache_events(exact)] == ["exact_hit"]
    assert [g.outcome for g in cache_events(para)] == ["semantic_hit"]
    assert ledger(settings, exact_id) == [] and ledger(settings, para_id) == []


async def test_the_provider_embedder_feeds_the_semantic_cache(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    policy = unchecked(gated(routed(load_policy(), [GPT]), accept=0.0))
    # The fake's vectors hash words: 0.85 for this rewording, 0.77 for the router question.
    cache = policy.cache.model_copy(update={"embedder": "provider", "threshold": 0.8})
    policy = policy.model_copy(update={"cache": cache})
    async with running_worker(client, settings, policy=policy, extra_workflows=[CachedStep]):
        first_id, _, first = await ask(client, settings, QUESTION)
        reworded_id, reworded_result, reworded = await ask(
            client, settings, "How can I reset my password?"
        )
        _, _, other = await ask(client, settings, OTHER)

    embedded = [r for r in provider_server.requests if r.path == "/v1/embeddings"]
    # Each input embedded (once per activity attempt: a slow machine may retry one).
    asked = [r.json["input"] for r in embedded]
    assert [inp for n, inp in enumerate(asked) if n == 0 or asked[n - 1] != inp] == [
        [QUESTION],
        ["How can I reset my password?"],
        [OTHER],
    ]
    assert all(r.json["model"] == "text-embedding-3-small" for r in embedded)
    assert cache_events(first) == [] and cache_events(other) == []
    (hit,) = cache_events(reworded)
    assert hit.outcome == "semantic_hit" and hit.value == pytest.approx(0.8519, abs=1e-3)
    stored = entries(settings)[0]
    assert stored.embedder == "openai/text-embedding-3-small" and stored.source_run_id == first_id
    # Every embedding call is charged to the step that made it: the semantic hit cost exactly
    # its input's embedding ("How can I reset my password?": 7 tokens at $0.02 per million).
    (embedding,) = ledger(settings, reworded_id)
    assert embedding.call == "embed-1" and embedding.model == "openai/text-embedding-3-small"
    assert embedding.input_tokens == 7 and embedding.outcome == "ok"
    assert embedding.cost_usd == pytest.approx(7 * 0.02 / 1e6)
    assert reworded_result.cost_usd == pytest.approx(embedding.cost_usd)
    assert reworded.steps[0].cost_usd == pytest.approx(embedding.cost_usd)
    first_calls = [row.call for row in ledger(settings, first_id)]
    assert [call for call in first_calls if call.startswith("embed-")] == ["embed-1"]


async def test_an_answer_awaiting_review_is_served_only_once_a_reviewer_approves_it(
    client: Client, settings: Settings
) -> None:
    reviewed = gated(load_policy(), accept=1.0)  # the gate accepts no model answer
    async with running_worker(client, settings, policy=reviewed, extra_workflows=[CachedStep]):
        first_id, first = await start_cached(client, settings, QUESTION)
        pending = await wait_for_pending(client, first_id)
        # While a reviewer has not decided, the same question is not answered from the cache:
        # the model is asked again, and that answer waits for a reviewer too.
        second_id, second = await start_cached(client, settings, QUESTION)
        second_pending = await wait_for_pending(client, second_id)
        assert cache_events(second_pending) == [] and ledger(settings, second_id)
        # Nor a paraphrase, by similarity.
        para_id, para = await start_cached(client, settings, PARAPHRASE)
        para_pending = await wait_for_pending(client, para_id)
        assert cache_events(para_pending) == [] and ledger(settings, para_id)
        await para.execute_update(
            "decide",
            decision_for(para_pending, kind="reject", reason="dup"),
            result_type=DecisionReceipt,
        )
        assert [e.held for e in entries(settings)] == [True, True, True]

        await first.execute_update("decide", decision_for(pending), result_type=DecisionReceipt)
        assert (await first.result()).status == "completed"
        await second.execute_update(
            "decide",
            decision_for(second_pending, kind="reject", reason="dup"),
            result_type=DecisionReceipt,
        )
        # Approved, the answer is served, and accepted without another review although the
        # gate accepts no model answer: a reviewer approved it for this input.
        # (A run waiting for a reviewer here would time out: that is the failure.)
        third_id, third, third_status = await asyncio.wait_for(
            ask(client, settings, QUESTION), timeout=60
        )

    assert third.status == "completed" and third.cost_usd == 0.0
    assert ledger(settings, third_id) == []
    (hit,) = cache_events(third_status)
    assert hit.outcome == "exact_hit" and "approved by a reviewer" in hit.detail
    confidence = third_status.steps[0].confidence
    assert confidence is not None and confidence.outcome == "accept"
    assert confidence.score < 1.0 and "a reviewer approved this answer" in confidence.reasons[0]


async def test_a_reviewers_edit_answers_the_same_question_and_is_proposed_for_a_paraphrase(
    client: Client, settings: Settings
) -> None:
    reviewed = gated(load_policy(), accept=1.0)
    assert reviewed.cache.accept_approved == "exact"
    written = {
        "answer": "Use 'Forgot password' on the sign-in page; the link lasts 1 hour.",
        "sure": True,
    }
    async with running_worker(client, settings, policy=reviewed, extra_workflows=[CachedStep]):
        first_id, first = await start_cached(client, settings, QUESTION)
        pending = await wait_for_pending(client, first_id)
        await first.execute_update(
            "decide",
            decision_for(pending, kind="edit", edited_output=written, reason="steps were wrong"),
            result_type=DecisionReceipt,
        )
        assert (await first.result()).answer == written["answer"]
        # The same question: what the reviewer wrote, accepted, for nothing.
        # (A run waiting for a reviewer here would time out: that is the failure.)
        same_id, same, same_status = await asyncio.wait_for(
            ask(client, settings, QUESTION), timeout=60
        )
        # A paraphrase is offered the reviewer's answer, but it reaches another user's
        # question unseen only with accept_approved: similar; here a reviewer sees it first.
        para_id, para = await start_cached(client, settings, PARAPHRASE)
        para_pending = await wait_for_pending(client, para_id)
        await para.execute_update("decide", decision_for(para_pending), result_type=DecisionReceipt)
        assert (await para.result()).answer == written["answer"]

    (hit,) = cache_events(same_status)
    assert hit.outcome == "exact_hit" and "approved by a reviewer" in hit.detail
    assert same.status == "completed" and same.answer == written["answer"]
    assert same.cost_usd == 0.0 and ledger(settings, same_id) == []
    (para_hit,) = cache_events(para_pending)
    assert para_hit.outcome == "semantic_hit" and ledger(settings, para_id) == []
    model_answer, edit = entries(settings)
    assert model_answer.verdict == "edited" and model_answer.evicted_at is not None
    assert edit.output == written and edit.approved and not edit.held
    assert edit.input_digest == model_answer.input_digest
    assert edit.source_run_id == first_id


async def test_a_cached_answer_is_audited_and_a_rejected_audit_stops_it_being_served(
    client: Client, settings: Settings, cached_policy: TetherPolicy
) -> None:
    audited = cached_policy.model_copy(update={"eval": EvalPolicy(audit_sample_rate=1.0)})
    async with running_worker(client, settings, policy=audited, extra_workflows=[CachedStep]):
        await ask(client, settings, QUESTION)
        served_id, _, served = await ask(client, settings, QUESTION)
        assert [g.outcome for g in cache_events(served)] == ["exact_hit"]
        # The answer the cache served is in the audit queue like a fresh one.
        with Session(get_engine(settings.resolved_database_url)) as session:
            (item,) = session.exec(
                select(ReviewItem).where(
                    ReviewItem.run_id == served_id, ReviewItem.reason == "audit_sample"
                )
            ).all()
            decided = decide_audit_sample(
                session,
                item.review_id,
                kind="reject",
                reviewer="bob",
                reason="wrong steps",
                edited_output=None,
                channel="api",
                decided_at=datetime.now(UTC),
            )
            session.commit()
        assert decided is not None
        again_id, _, again = await ask(client, settings, QUESTION)

    # Rejected in the audit, the answer is no longer served: the model is asked again.
    assert cache_events(again) == [] and ledger(settings, again_id)
    assert entries(settings)[0].verdict == "rejected"


async def test_the_judge_checks_a_cached_answer_before_its_first_reuse(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    policy = gated(routed(load_policy(), [GPT]), accept=0.0)
    assert policy.cache.verify_reuse and policy.cache.verify_min_score == 0.7
    wrong = {"answer": "Call us.", "sure": True}
    right = {"answer": "Use the reset link on the sign-in page.", "sure": True}
    provider_server.script(answer=wrong)  # run 1: the model's answer, cached
    provider_server.script(answer={"score": 0.3, "reason": "does not say how"})  # run 2: check
    provider_server.script(answer=right)  # run 2: doubted, so the model answers again
    provider_server.script(answer={"score": 0.9, "reason": "right"})  # run 3: check
    async with running_worker(client, settings, policy=policy, extra_workflows=[CachedStep]):
        runs = [await ask(client, settings, QUESTION) for _ in range(4)]

    calls = [[r.call for r in ledger(settings, run_id)] for run_id, _, _ in runs]
    # The second run's check graded the cached answer poorly: not served, the model answered.
    # The third run's check passed: served. The fourth reuses a checked answer: no call at all.
    assert calls == [["main"], ["cache-check", "main"], ["cache-check"], []]
    answers = [result.answer for _, result, _ in runs]
    assert answers == [wrong["answer"], right["answer"], right["answer"], right["answer"]]
    outcomes = [[g.outcome for g in cache_events(status)] for _, _, status in runs]
    assert outcomes == [[], ["doubted"], ["verified", "exact_hit"], ["exact_hit"]]
    doubted = cache_events(runs[1][2])[0]
    assert doubted.value == 0.3 and "evicted" in doubted.detail
    # The check is charged to the run that reused the answer; the reuse after it costs nothing.
    assert runs[2][1].cost_usd > 0 and runs[3][1].cost_usd == 0.0
    first, second = entries(settings)
    assert first.verdict == "doubted" and first.evicted_at is not None and not first.verified
    assert second.verified and second.evicted_at is None
    assert len(provider_server.requests) == 4


async def test_an_answer_the_judge_doubted_is_not_offered_again_when_the_model_repeats_it(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    policy = gated(routed(load_policy(), [GPT]), accept=0.0)
    wrong = {"answer": "Call us.", "sure": True}
    provider_server.script(answer=wrong)
    provider_server.script(answer={"score": 0.3, "reason": "does not say how"})
    provider_server.script(answer=wrong)  # asked again, the model repeats its answer
    provider_server.script(answer=wrong)
    async with running_worker(client, settings, policy=policy, extra_workflows=[CachedStep]):
        runs = [await ask(client, settings, QUESTION) for _ in range(3)]

    calls = [[r.call for r in ledger(settings, run_id)] for run_id, _, _ in runs]
    # The repeated answer is kept (once) held: no run is served it, nor checks it again.
    assert calls == [["main"], ["cache-check", "main"], ["main"]]
    first, *repeated = entries(settings)
    assert first.verdict == "doubted"
    assert [(e.output_digest, e.held) for e in repeated] == [(first.output_digest, True)]


async def test_an_unreadable_check_serves_nothing_and_evicts_nothing(
    client: Client,
    tmp_path: Path,
    temporal_address: str,
    provider_server: FakeProviderServer,
) -> None:
    settings = openai_settings(tmp_path, temporal_address, provider_server)
    policy = gated(routed(load_policy(), [GPT]), accept=0.0)
    answer = {"answer": "Use the reset link on the sign-in page.", "sure": True}
    provider_server.script(answer=answer)
    provider_server.script(answer="I cannot grade this.")  # not the verdict's JSON
    provider_server.script(answer=answer)
    async with running_worker(client, settings, policy=policy, extra_workflows=[CachedStep]):
        runs = [await ask(client, settings, QUESTION) for _ in range(2)]

    calls = [[r.call for r in ledger(settings, run_id)] for run_id, _, _ in runs]
    assert calls == [["main"], ["cache-check", "main"]]
    assert [g.outcome for g in cache_events(runs[1][2])] == ["unchecked"]
    (kept,) = entries(settings)  # not doubted, not evicted; the same answer is kept once
    assert kept.evicted_at is None and kept.verdict is None and not kept.verified
