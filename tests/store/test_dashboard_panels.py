"""The dashboard's budget alerts and calibration, read from the store (SQLite and PostgreSQL):
only the asked tenants' rows, newest first, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store.conftest import fresh_store_url
from tether.store.budget_alerts import BudgetAlert
from tether.store.dashboard_panels import recent_budget_alerts, step_calibrations
from tether.store.engine import session_scope
from tether.store.examples import LabelledExample
from tether.store.run_ids import claim_run_id
from tether.store.spend import SpendScope

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_store_url(request.param, tmp_path, "tether_panels") as url:
        yield url


def alert(scope: SpendScope, kind: str, run_id: str, minutes_ago: int) -> BudgetAlert:
    return BudgetAlert(
        key=f"{scope.key}@0.5",
        scope_kind=kind,
        scope=scope.key,
        threshold=0.5,
        spent_usd=5.0,
        limit_usd=10.0,
        run_id=run_id,
        created_at=NOW - timedelta(minutes=minutes_ago),
    )


def test_alerts_of_the_asked_tenants_only_newest_first_and_bounded(db_url: str) -> None:
    # "a%" and "a_" hold LIKE wildcards: a prefix match must not let them see tenant "ab".
    with session_scope(db_url) as session:
        claim_run_id(session, "run-ab", "wf", "ab")
        claim_run_id(session, "run-a%", "wf", "a%")
        session.add_all(
            [
                alert(SpendScope.tenant_month("ab", NOW), "tenant_monthly", "run-ab", 3),
                alert(SpendScope.user_day("ab", "u1", NOW), "user_daily", "run-ab", 2),
                alert(SpendScope.run("run-ab"), "run", "run-ab", 1),
                alert(SpendScope.tenant_month("a%", NOW), "tenant_monthly", "run-a%", 4),
                # A run the registry does not know: shown only to a login of every tenant.
                alert(SpendScope.run("run-unknown"), "run", "run-unknown", 0),
            ]
        )
    with session_scope(db_url) as session:
        ab = recent_budget_alerts(session, ("ab",))
        wild = recent_budget_alerts(session, ("a%", "a_"))
        everyone = recent_budget_alerts(session, None)
        nobody = recent_budget_alerts(session, ())
        two = recent_budget_alerts(session, None, limit=2)
    assert [(a.scope, a.tenant, a.period) for a in ab] == [
        ("run", "ab", "run-ab"),
        ("user_daily", "ab", "2026-11-29"),
        ("tenant_monthly", "ab", "2026-11"),
    ]
    assert ab[1].end_user == "u1" and ab[0].notified is False
    assert [(a.scope, a.tenant) for a in wild] == [("tenant_monthly", "a%")]
    assert everyone[0].run_id == "run-unknown" and len(everyone) == 5
    assert nobody == [] and len(two) == 2


def test_calibration_per_step_of_the_asked_tenants(db_url: str) -> None:
    scored = [(0.9, "approve")] * 5 + [(0.7, "approve")] * 3 + [(0.7, "reject"), (0.5, "edit")]
    rows = [
        LabelledExample(
            review_id=f"r{n}",
            run_id="run-1",
            workflow="wf",
            step="answer",
            tenant="acme",
            decision=decision,
            asked_because="low_confidence",
            confidence_score=score,
            decided_at=NOW - timedelta(minutes=n),
        )
        for n, (score, decision) in enumerate(scored)
    ]
    rows += [
        LabelledExample(
            review_id=f"g{n}",
            run_id="run-2",
            workflow="wf",
            step=step,
            tenant="globex",
            decision="reject",
            asked_because="low_confidence",
            confidence_score=0.95,
        )
        for n, step in enumerate(["answer", "other"])
    ]
    # A retry labels nothing; an output without a score cannot be calibrated.
    rows.append(
        LabelledExample(
            review_id="x1",
            run_id="run-1",
            workflow="wf",
            step="answer",
            tenant="acme",
            decision="retry",
            asked_because="low_confidence",
            confidence_score=0.99,
        )
    )
    with session_scope(db_url) as session:
        session.add_all(rows)
    with session_scope(db_url) as session:
        [acme] = step_calibrations(session, ("acme",), lambda wf, step: (0.8, 0.95, 0.05))
        everyone = step_calibrations(session, None, lambda wf, step: (0.8, 0.95, 0.05))
    assert (acme.workflow, acme.step, acme.labelled) == ("wf", "answer", 10)
    assert acme.accept_threshold == 0.8 and acme.suggested_threshold == 0.75
    precision = {row.threshold: row.precision for row in acme.thresholds}
    assert precision[0.5] == 0.8 and precision[0.75] == 1.0 and precision[0.95] is None
    assert [(c.step, c.labelled) for c in everyone] == [("answer", 11), ("other", 1)]
