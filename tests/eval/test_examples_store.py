"""Labelled examples in the store (SQLite and PostgreSQL): one per decided review, redacted,
and the calibration report a step's examples give."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import func, select

from policies.models import TetherPolicy
from review_ui.app import create_app
from tests.review_ui.conftest import BOB, UiServer
from tests.store.conftest import fresh_store_url
from tether.store.audit import AuditSigner, use_audit_signer
from tether.store.audit_samples import decide_audit_sample
from tether.store.engine import session_scope
from tether.store.examples import LabelledExample, calibration_report, examples_for, record_example
from tether.store.reviews import ReviewItem, get_review

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, "tether_examples") as url:
        use_audit_signer(
            url, AuditSigner(key=b"test-audit-key-" * 3, head_file=tmp_path / "audit.head")
        )
        yield url


def decided_item(n: int, decision: str, score: float, **extra: object) -> ReviewItem:
    fields: dict[str, object] = {
        "review_id": f"run-{n}:answer:1",
        "run_id": f"run-{n}",
        "workflow": "wf",
        "step": "answer",
        "tenant": "acme",
        "reason": "low_confidence",
        "summary": "answer: low confidence",
        "output": {"answer": "4"},
        "output_model": "tests.workflows.sample_workflows:Answer",
        "output_digest": "sha256:x",
        "confidence_score": score,
        "expires_at": NOW + timedelta(days=7),
        "status": {"approve": "approved", "reject": "rejected", "edit": "edited"}[decision],
        "decision": decision,
        "reviewer": "bob",
        "decided_at": NOW + timedelta(minutes=n),
        "decided_via": "web",
        "prompt_version": "1",
        "model": "simulated/cheap",
        "step_input": {"text": "What is 2+2?"},
    }
    return ReviewItem.model_validate(fields | extra)


def test_a_decision_is_stored_once_with_its_correction_and_no_raw_pii(db_url: str) -> None:
    item = decided_item(
        1,
        "edit",
        0.42,
        step_input={"text": "Mail jane.doe@example.com the total"},
        output={"answer": "Sent to jane.doe@example.com"},
        decided_output={"answer": "Sent to jane.doe@example.com: 4", "sure": True},
        decision_reason="missing the total",
    )
    with session_scope(db_url) as session:
        session.add(item)
        session.flush()
        assert record_example(session, item) is True
        assert record_example(session, item) is False  # a retried activity writes nothing more
    with session_scope(db_url) as session:
        count = session.exec(select(func.count()).select_from(LabelledExample)).one()
        [example] = examples_for(session, "wf", "answer")
    assert count == 1
    assert example.decision == "edit" and example.output_was_right is False
    assert example.reason == "missing the total" and example.reviewer == "bob"
    assert example.prompt_version == "1" and example.model == "simulated/cheap"
    assert example.confidence_score == pytest.approx(0.42)
    # One placeholder for the address everywhere, never the address itself.
    assert example.input == {"text": "Mail [EMAIL_1] the total"}
    assert example.model_output == {"answer": "Sent to [EMAIL_1]"}
    assert example.corrected_output == {"answer": "Sent to [EMAIL_1]: 4", "sure": True}


def test_decisions_that_judge_no_model_output_are_not_examples(db_url: str) -> None:
    budget = decided_item(2, "approve", 0.9, output_model=None, reason="over_budget")
    defaulted = decided_item(3, "approve", 0.9, decided_via="timeout")
    with session_scope(db_url) as session:
        session.add_all([budget, defaulted])
        session.flush()
        assert record_example(session, budget) is False
        assert record_example(session, defaulted) is False


def test_calibration_report_from_reviews_and_audits(db_url: str) -> None:
    # 0.95: 5 approved (audits); 0.85: 4 approved, 1 edited; 0.55: 2 approved, 3 rejected.
    # Precision at >= 0.9: 5/5; >= 0.8: 9/10; >= 0.5: 11/15. Target 0.9 -> 0.8 is enough.
    labels = [(0.95, "approve")] * 5 + [(0.85, "approve")] * 4 + [(0.85, "edit")]
    labels += [(0.55, "approve")] * 2 + [(0.55, "reject")] * 3
    with session_scope(db_url) as session:
        for n, (score, decision) in enumerate(labels):
            reason = "audit_sample" if score > 0.9 else "low_confidence"
            item = decided_item(n, decision, score, reason=reason)
            session.add(item)
            session.flush()
            record_example(session, item)
        session.add(decided_item(99, "approve", 0.9, workflow="other"))  # another workflow's
    with session_scope(db_url) as session:
        report = calibration_report(session, "wf", "answer", target_precision=0.9)
    by_threshold = {row.threshold: row for row in report.thresholds}
    assert report.labelled == 15
    assert (by_threshold[0.9].accepted, by_threshold[0.9].correct) == (5, 5)
    assert (by_threshold[0.8].accepted, by_threshold[0.8].correct) == (10, 9)
    assert (by_threshold[0.5].accepted, by_threshold[0.5].correct) == (15, 11)
    assert report.suggested_threshold == pytest.approx(0.6)  # 0.6 .. 0.85 all give 9/10
    # Audited at a 50 % rate, each audit stands for 2 accepted outputs: at >= 0.5 precision is
    # (10 + 4 + 2) / (10 + 5 + 5) = 0.8; at >= 0.8, (10 + 4) / (10 + 5) = 0.933.
    with session_scope(db_url) as session:
        weighted = calibration_report(
            session, "wf", "answer", target_precision=0.9, audit_sample_rate=0.5
        )
    rows = {row.threshold: row for row in weighted.thresholds}
    assert rows[0.5].precision == pytest.approx(0.8)
    assert rows[0.8].precision == pytest.approx(14 / 15)


async def test_the_calibration_api_reports_the_callers_tenants_only(
    tmp_path: Path, policy: TetherPolicy
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, "127.0.0.1:1")
    url = settings.resolved_database_url
    # Tenant default: .95 approve x5, .85 approve x4 + reject x1. Tenant zeta (not bob's):
    # .95 reject x5, which would pull precision at >= .9 down to 50 % if it counted.
    labels = [("default", 0.95, "approve")] * 5 + [("default", 0.85, "approve")] * 4
    labels += [("default", 0.85, "reject")] + [("zeta", 0.95, "reject")] * 5
    with session_scope(url) as session:
        for n, (tenant, score, decision) in enumerate(labels):
            item = decided_item(n, decision, score, tenant=tenant)
            session.add(item)
            session.flush()
            record_example(session, item)
    server = UiServer(create_app(settings, policy=policy)).start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, auth=BOB, timeout=30) as api:
            answer = await api.get(
                "/api/calibration", params={"workflow": "wf", "step": "answer", "target": 0.9}
            )
            anonymous = await httpx.AsyncClient(base_url=server.base_url).get(
                "/api/calibration", params={"workflow": "wf", "step": "answer"}
            )
    finally:
        server.stop()
    assert anonymous.status_code == 401
    assert answer.status_code == 200, answer.text
    body = answer.json()
    rows = {row["threshold"]: row for row in body["thresholds"]}
    assert body["labelled"] == 10
    assert (rows[0.9]["accepted"], rows[0.9]["correct"]) == (5, 5)
    assert (rows[0.85]["accepted"], rows[0.85]["correct"]) == (10, 9)
    assert body["suggested_threshold"] == pytest.approx(0.0)  # 9/10 meets 90 % from 0 up


def test_an_audit_verdict_is_recorded_once_with_its_example(db_url: str) -> None:
    item = decided_item(7, "approve", 0.97, reason="audit_sample")
    item.status, item.decision, item.reviewer, item.decided_at = "pending", None, None, None
    with session_scope(db_url) as session:
        session.add(item)
    verdict = {
        "kind": "edit",
        "reviewer": "alice",
        "reason": "the total is 5",
        "edited_output": {"answer": "5", "sure": True},
        "channel": "web",
        "decided_at": NOW,
    }
    with session_scope(db_url) as session:
        decided = decide_audit_sample(session, item.review_id, **verdict)  # type: ignore[arg-type]
        assert decided is not None and decided.status == "edited"
    with session_scope(db_url) as session:
        again = verdict | {"kind": "approve", "reviewer": "bob"}
        assert decide_audit_sample(session, item.review_id, **again) is None  # type: ignore[arg-type]
        [example] = examples_for(session, "wf", "answer")
        stored = get_review(session, item.review_id)
    assert stored is not None and stored.reviewer == "alice" and stored.decision == "edit"
    assert example.asked_because == "audit_sample" and example.decision == "edit"
    assert example.corrected_output == {"answer": "5", "sure": True}
    assert example.model_output == {"answer": "4"}
