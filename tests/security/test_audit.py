"""Attacks on the audit log (issue 9, item 6), each tried with write access to the database.

The log is keyed (HMAC-SHA256 under a key outside the database) and headed (a head row updated
with each append, and a head file outside the database), so ``tether audit verify`` exits
non-zero naming the first bad row after an edited row, a row re-hashed without the key, a
deleted middle row, a deleted tail (with or without the head row rolled back), and a reorder.
Without a key outside dev nothing starts. Rows from before the key are re-chained, and the
record says whether their old chain held. Model calls, budget actions and decisions (with their
receipts and the edited output's digest) are all recorded.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from temporalio.client import Client

from policies.models import TetherPolicy
from tests.policy_variants import gated, judging_always, with_budgets
from tests.security.test_identity import DEV_POLICY
from tests.store.conftest import postgres_url
from tests.workflows.sample_workflows import TEST_WORKFLOWS, OneStepResult, Question
from tests.workflows.test_engine import decision_for, wait_for_pending
from tether.cli import main
from tether.contracts import DecisionReceipt
from tether.core.digests import output_digest
from tether.core.errors import ConfigurationError
from tether.core.settings import Settings
from tether.store.audit import AuditEvent, append_event, events_for
from tether.store.audit_key import configure_audit
from tether.store.engine import dispose_all, get_engine, session_scope
from tether.worker import running_worker

FIXTURES = Path(__file__).parent.parent / "store" / "fixtures"
KEY = "k" * 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings of a fresh store (a fresh PostgreSQL database per test), also in the
    environment, so ``tether audit verify`` reads the same store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        drop = None
    else:
        server = make_url(postgres_url())
        name = f"tether_audit_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        drop = (admin, name)
    environ = {"TETHER_HOME": str(tmp_path / "home"), "TETHER_DATABASE_URL": url}
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("TETHER_AUDIT_KEY", raising=False)
    yield Settings.from_env(environ)
    dispose_all()
    if drop is not None:
        admin, name = drop
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def six_events(settings: Settings) -> None:
    configure_audit(settings)
    for n in range(1, 7):
        with session_scope(settings.resolved_database_url) as session:
            append_event(session, key=f"e{n}", kind="review_decided", actor="bob", detail={"n": n})


def tamper(settings: Settings, *statements: str) -> None:
    with get_engine(settings.resolved_database_url).begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_intact_log_verifies(store: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    six_events(store)
    assert verify(capsys) == (0, "audit log intact: 6 rows, head at seq 6\n")


def test_an_edited_row_is_named(store: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    six_events(store)
    tamper(store, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    code, said = verify(capsys)
    assert code == 1 and "tampered: seq 3: its content does not match its HMAC" in said


def test_a_row_rehashed_without_the_key_is_named(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old chain was plain SHA-256: whoever edited a row could recompute every hash."""
    six_events(store)
    with Session(get_engine(store.resolved_database_url)) as session:
        rows = list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]
    prev = rows[1].hash
    statements = []
    for row in rows[2:]:
        forged = "sha256:" + hashlib.sha256(f"{prev}{row.seq}mallory".encode()).hexdigest()
        statements.append(
            f"UPDATE audit_events SET actor = 'mallory', prev_hash = '{prev}', "
            f"hash = '{forged}' WHERE seq = {row.seq}"
        )
        prev = forged
    statements.append(f"UPDATE audit_head SET hash = '{prev}'")
    tamper(store, *statements)
    code, said = verify(capsys)
    assert code == 1 and "tampered: seq 3:" in said


def test_a_deleted_middle_row_is_named(store: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    six_events(store)
    tamper(store, "DELETE FROM audit_events WHERE seq = 3")
    code, said = verify(capsys)
    assert code == 1 and "tampered: seq 4: seq 3 before it missing (deleted)" in said


def test_a_deleted_tail_is_named(store: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    six_events(store)
    tamper(store, "DELETE FROM audit_events WHERE seq >= 5")
    code, said = verify(capsys)
    assert code == 1 and "tampered: seq 5: missing; the head row says" in said


def test_a_deleted_tail_with_its_head_row_rolled_back_shows_against_the_head_file(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    six_events(store)
    with Session(get_engine(store.resolved_database_url)) as session:
        fourth = session.exec(select(AuditEvent).where(AuditEvent.seq == 4)).one()
    tamper(
        store,
        "DELETE FROM audit_events WHERE seq >= 5",
        f"UPDATE audit_head SET seq = 4, hash = '{fourth.hash}'",
    )
    code, said = verify(capsys)
    assert code == 1 and "tampered: seq 5: missing; the head file" in said


def test_a_reorder_is_named(store: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    six_events(store)
    tamper(
        store,
        "UPDATE audit_events SET seq = 100 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 100",
    )
    code, said = verify(capsys)
    assert code == 1 and "tampered: seq 2: does not link to the row before it" in said


def test_outside_dev_nothing_starts_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything else a production start needs is there: private, hashed logins.
    policy = yaml.safe_load(DEV_POLICY.read_text())
    policy["reviewers"] = [
        {
            "name": "erin",
            "password_hash": PasswordHasher().hash("erin-private"),
            "roles": ["reviewer"],
        }
    ]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    production = {
        "TETHER_ENV": "production",
        "TETHER_HOME": str(tmp_path),
        "TETHER_SESSION_SECRET": "s" * 40,
        "TETHER_POLICY_FILE": str(policy_file),
    }
    with pytest.raises(ConfigurationError, match="TETHER_AUDIT_KEY must be set outside"):
        configure_audit(Settings.from_env(production))
    for variable, value in production.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("TETHER_AUDIT_KEY", raising=False)
    code, said = verify(capsys)
    assert code == 2 and said.startswith("tether: TETHER_AUDIT_KEY must be set outside")
    assert main(["ui"]) == 2, "the review UI does not start either"
    assert capsys.readouterr().err.startswith("tether: TETHER_AUDIT_KEY must be set outside")
    assert not (tmp_path / "audit.key").exists(), "no key is generated outside dev"


def test_in_dev_the_key_is_a_private_file_under_tether_home(store: Settings) -> None:
    six_events(store)
    key_file = store.home / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 64
    # Another key signs differently: the rows do not verify under it.
    other = Settings.from_env(
        {
            "TETHER_HOME": str(store.home),
            "TETHER_DATABASE_URL": store.resolved_database_url,
            "TETHER_AUDIT_KEY": KEY,
        }
    )
    with Session(get_engine(store.resolved_database_url)) as session:
        from tether.store.audit_verify import verify_log

        verdict = verify_log(session, configure_audit(other))
    assert verdict.first_bad_seq == 1


def test_rows_from_before_the_key_are_rechained_and_their_old_chain_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    shutil.copy(FIXTURES / "pre_migration.db", tmp_path / "store.db")
    settings = Settings.from_env({"TETHER_HOME": str(tmp_path), "TETHER_DATABASE_URL": url})
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    monkeypatch.setenv("TETHER_DATABASE_URL", url)
    configure_audit(settings)
    with Session(get_engine(url)) as session:
        legacy = len(events_for(session))
    assert legacy > 0
    code, said = verify(capsys)
    assert code == 1 and "not keyed yet" in said
    with session_scope(url) as session:
        append_event(session, key="after-upgrade", kind="review_decided", actor="bob")
    with Session(get_engine(url)) as session:
        events = events_for(session)
    marker = events[-2]
    assert marker.kind == "audit_rechained"
    assert marker.detail["rechained_rows"] == legacy
    assert marker.detail["legacy_chain"] == "intact"
    assert all(e.hash.startswith("hmac-sha256:") for e in events)
    assert verify(capsys) == (0, f"audit log intact: {legacy + 2} rows, head at seq {legacy + 2}\n")
    dispose_all()


@pytest.mark.integration
async def test_model_calls_budget_actions_and_decisions_with_receipts_are_recorded(
    client: Client, settings: Settings, policy: TetherPolicy
) -> None:
    run_id = f"audited-{uuid.uuid4().hex[:8]}"
    async with running_worker(
        client,
        settings,
        policy=gated(judging_always(policy), accept=1.0),
        extra_workflows=TEST_WORKFLOWS,
    ):
        handle = await client.start_workflow(
            "test_one_step",
            Question(text="2+2?"),
            id=run_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
        status = await wait_for_pending(client, run_id)
        edited = {"answer": "4", "sure": True}
        receipt = await handle.execute_update(
            "decide",
            decision_for(status, kind="edit", edited_output=edited),
            result_type=DecisionReceipt,
        )
        await handle.result()
    stopped_id = f"stopped-{uuid.uuid4().hex[:8]}"
    stingy = gated(with_budgets(policy, per_run_usd=0.0000001, on_exceed="stop"), accept=0.0)
    async with running_worker(client, settings, policy=stingy, extra_workflows=TEST_WORKFLOWS):
        stopped = await client.execute_workflow(
            "test_one_step",
            Question(text="2+2?"),
            id=stopped_id,
            task_queue=settings.task_queue,
            result_type=OneStepResult,
        )
    assert stopped.status == "stopped_over_budget"
    with Session(get_engine(settings.resolved_database_url)) as session:
        events = events_for(session, run_id=run_id)
        refused = events_for(session, run_id=stopped_id)
        from tether.store.audit import verify_chain

        assert verify_chain(session) is None
    calls = [e for e in events if e.kind == "model_call"]
    assert {e.detail["call"] for e in calls} >= {"main", "judge"}
    assert all(e.detail["cost_usd"] > 0 and e.detail["model"] for e in calls)
    assert not any("2+2" in str(e.detail) for e in events), "no prompt text in the log"
    [decided] = [e for e in events if e.kind == "review_decided"]
    assert decided.detail["receipt"]["output_digest"] == receipt.output_digest
    assert decided.detail["receipt"]["reviewer"] == "bob"
    assert decided.detail["edited_output_digest"] == output_digest(edited)
    [budget] = [e for e in refused if e.kind == "budget_refused"]
    assert budget.detail["action"] == "stop" and budget.detail["estimate_usd"] > 0


def test_a_deleted_tail_with_the_head_row_rolled_back_and_the_head_file_gone_is_refused(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in a compose deployment whose TETHER_HOME is not shared: no head file to compare."""
    six_events(store)
    with Session(get_engine(store.resolved_database_url)) as session:
        fourth = session.exec(select(AuditEvent).where(AuditEvent.seq == 4)).one()
    tamper(
        store,
        "DELETE FROM audit_events WHERE seq >= 5",
        f"UPDATE audit_head SET seq = 4, hash = '{fourth.hash}'",
    )
    (store.home / "audit.head").unlink()
    code, said = verify(capsys)
    assert code == 1 and "seq 4: the head row's MAC does not match" in said


def test_a_missing_head_file_is_a_failure_once_the_log_has_rows(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    six_events(store)
    (store.home / "audit.head").unlink()
    code, said = verify(capsys)
    assert code == 1 and "audit.head is missing, so deletion of the log's tail" in said
    assert len(said.strip().splitlines()) == 1


def test_resetting_keyed_to_false_does_not_launder_an_edit(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Edit a row, recompute the plain SHA-256 chain of before the key over every row, mark the
    head unkeyed: the head file says a keyed head was written, so nothing is re-signed."""
    from tether.store.audit_rechain import legacy_hash

    six_events(store)
    with Session(get_engine(store.resolved_database_url)) as session:
        rows = list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]
    prev, statements = "sha256:" + "0" * 64, []
    for row in rows:
        if row.seq == 3:
            row.actor = "mallory"
        forged = legacy_hash(prev, row)
        statements.append(
            f"UPDATE audit_events SET actor = '{row.actor}', prev_hash = '{prev}', "
            f"hash = '{forged}' WHERE seq = {row.seq}"
        )
        prev = forged
    statements.append(f"UPDATE audit_head SET keyed = false, hash = '{prev}'")
    tamper(store, *statements)
    with (
        pytest.raises(ConfigurationError, match="refusing to re-chain"),
        session_scope(store.resolved_database_url) as session,
    ):
        append_event(session, key="after", kind="review_decided", actor="bob")
    with Session(get_engine(store.resolved_database_url)) as session:
        assert {e.actor for e in events_for(session)} == {"bob", "mallory"}, "nothing re-signed"


def test_resetting_keyed_to_false_over_keyed_rows_is_named(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plain chain recomputed from the edited row on (rows before it keep their HMACs), the
    head marked unkeyed and the head file removed: the keyed rows refuse the re-chain."""
    from tether.store.audit_rechain import legacy_hash

    six_events(store)
    with Session(get_engine(store.resolved_database_url)) as session:
        rows = list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]
    prev, statements = rows[1].hash, []
    for row in rows[2:]:
        row.actor = "mallory" if row.seq == 3 else row.actor
        forged = legacy_hash(prev, row)
        statements.append(
            f"UPDATE audit_events SET actor = '{row.actor}', prev_hash = '{prev}', "
            f"hash = '{forged}' WHERE seq = {row.seq}"
        )
        prev = forged
    statements.append(f"UPDATE audit_head SET keyed = false, hash = '{prev}'")
    tamper(store, *statements)
    (store.home / "audit.head").unlink()
    with (
        pytest.raises(ConfigurationError, match="seq 1 carries a keyed hash"),
        session_scope(store.resolved_database_url) as session,
    ):
        append_event(session, key="after", kind="review_decided", actor="bob")
    with Session(get_engine(store.resolved_database_url)) as session:
        assert not any(e.hash.startswith("hmac") for e in events_for(session)[2:]), "not re-signed"
    code, said = verify(capsys)
    assert code == 1 and "seq 1: carries a keyed hash, but the head row says" in said
