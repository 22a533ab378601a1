"""The ways in, tried again after review (issue 9): the image fails closed, dev does not serve
its published logins beyond loopback, a re-hashed dev password is still a dev login, a start
that may have landed keeps its run id, an unregistered run is not shown to a limited login, and
deep nesting is a 422 before anything re-encodes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from argon2 import PasswordHasher
from pydantic import BaseModel
from sqlmodel import Session
from temporalio.service import RPCError, RPCStatusCode

from policies.loader import load_policy
from policies.models import TetherPolicy
from tests.security.apps import app_over, unreachable_temporal, with_login
from tether import client as runs_client
from tether.cli import main
from tether.core.settings import Settings
from tether.run_input import MAX_INPUT_DEPTH
from tether.store.engine import dispose_all, get_engine
from tether.store.reviews import ReviewItem

ROOT = Path(__file__).resolve().parents[2]
DEV_POLICY = ROOT / "policies" / "default.yaml"
ALICE = ("alice", "alice-dev")
ROOT_LOGIN = ("root", "root-private-password")  # every tenant ("*")
LONG_SECRET = "a-private-session-secret-of-enough-length"


def _must_not_serve(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the UI was served")


# --- 1. the image fails closed; dev binds loopback only -------------------------------------------


def test_the_image_runs_in_production_so_it_refuses_the_dev_logins() -> None:
    env_lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if "ENV" in line]
    assert any("TETHER_ENV=production" in line for line in env_lines)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_dev_refuses_to_serve_the_ui_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    host: str,
) -> None:
    monkeypatch.setenv("TETHER_ENV", "dev")
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    monkeypatch.setenv("TETHER_UI_HOST", host)
    monkeypatch.delenv("TETHER_UI_PUBLIC_IN_DEV", raising=False)
    monkeypatch.setattr(uvicorn, "run", _must_not_serve)
    assert main(["ui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and host in err and "TETHER_UI_PUBLIC_IN_DEV" in err


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TETHER_UI_HOST": "127.0.0.1"}, None),
        ({"TETHER_UI_HOST": "localhost"}, None),
        ({"TETHER_UI_HOST": "::1"}, None),
        ({"TETHER_UI_HOST": "0.0.0.0", "TETHER_UI_PUBLIC_IN_DEV": "1"}, None),
        ({"TETHER_UI_HOST": "0.0.0.0"}, "refusing to bind"),
    ],
)
def test_the_bind_rule(tmp_path: Path, env: dict[str, str], expected: str | None) -> None:
    settings = Settings.from_env({"TETHER_HOME": str(tmp_path), **env})
    problem = settings.ui_bind_problem()
    assert (problem is None) if expected is None else (expected in (problem or ""))


def test_production_binds_where_it_is_told(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "TETHER_ENV": "production",
            "TETHER_HOME": str(tmp_path),
            "TETHER_SESSION_SECRET": LONG_SECRET,
            "TETHER_UI_HOST": "0.0.0.0",
        }
    )
    assert settings.ui_bind_problem() is None


# --- 2. a re-hashed dev password is still a dev login ---------------------------------------------


def test_production_refuses_a_freshly_hashed_dev_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(DEV_POLICY.read_text())
    rehashed = PasswordHasher().hash("alice-dev")  # a new salt: not any hash in the dev policy
    data["reviewers"] = [{"name": "alice", "password_hash": rehashed, "roles": ["reviewer"]}]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("TETHER_ENV", "production")
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    monkeypatch.setenv("TETHER_SESSION_SECRET", LONG_SECRET)
    monkeypatch.setenv("TETHER_AUDIT_KEY", "a" * 64)
    monkeypatch.setenv("TETHER_POLICY_FILE", str(policy_file))
    monkeypatch.setattr(uvicorn, "run", _must_not_serve)
    assert main(["ui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dev login" in err and "alice-dev" not in err


# --- 3. a start that may have landed keeps its id; unregistered runs ------------------------------


class _Ticket(BaseModel):
    tenant: str = "acme"


class _FailingStart:
    """A Temporal client whose start fails as ``error`` does."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        raise self.error


def _claimed(settings: Settings, run_id: str) -> bool:
    """Whether ``run_id`` is still claimed (a new claim is refused)."""
    free = runs_client.claim_in_store(settings.resolved_database_url, run_id, "x", "acme")
    return not free


@pytest.mark.parametrize(
    "error",
    [
        RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        RPCError("connection reset", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("cancelled", RPCStatusCode.CANCELLED, b""),
        RPCError("unknown", RPCStatusCode.UNKNOWN, b""),
        TimeoutError(),
        asyncio.CancelledError(),
        RuntimeError("anything else"),
    ],
    ids=lambda e: type(e).__name__ + (f"-{e.status.name}" if isinstance(e, RPCError) else ""),
)
async def test_a_start_that_may_have_landed_keeps_its_run_id(
    tmp_path: Path, error: BaseException
) -> None:
    settings = Settings.from_env({"TETHER_HOME": str(tmp_path)})
    run_id = f"run-{uuid.uuid4().hex[:10]}"
    with pytest.raises(type(error)):
        await runs_client.start_run(
            _FailingStart(error),  # type: ignore[arg-type]
            settings,
            "support_triage",
            _Ticket(),
            run_id=run_id,
        )
    assert _claimed(settings, run_id)
    dispose_all()


async def test_a_start_the_server_refused_frees_its_run_id(tmp_path: Path) -> None:
    settings = Settings.from_env({"TETHER_HOME": str(tmp_path)})
    run_id = f"run-{uuid.uuid4().hex[:10]}"
    refused = RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b"")
    with pytest.raises(RPCError):
        await runs_client.start_run(
            _FailingStart(refused),  # type: ignore[arg-type]
            settings,
            "support_triage",
            _Ticket(),
            run_id=run_id,
        )
    assert not _claimed(settings, run_id)
    dispose_all()


def _with_root(policy: TetherPolicy) -> TetherPolicy:
    return with_login(policy, ROOT_LOGIN[0], ROOT_LOGIN[1], ["reviewer", "lead"], ["*"])


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    return unreachable_temporal(tmp_path)


@pytest.fixture
async def app_client(store_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_over(store_settings, _with_root(load_policy())) as http:
        yield http


async def test_a_run_the_registry_does_not_know_is_shown_only_to_all_tenant_logins(
    app_client: httpx.AsyncClient,
) -> None:
    limited = await app_client.get("/api/runs/started-before-the-registry", auth=ALICE)
    assert limited.status_code == 404, limited.text
    assert limited.json()["detail"] == "no run 'started-before-the-registry'"
    # An all-tenant login goes on to Temporal (unreachable here: 503, not 404).
    everyone = await app_client.get("/api/runs/started-before-the-registry", auth=ROOT_LOGIN)
    assert everyone.status_code == 503, everyone.text


# --- 4. deep nesting is a 422 before any re-encoding ----------------------------------------------

DEPTHS = [MAX_INPUT_DEPTH + 1, 900, 920, 940]


def _nested(depth: int) -> str:
    """A JSON value nesting objects ``depth`` deep."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize("depth", DEPTHS)
async def test_deeply_nested_run_input_is_a_422(app_client: httpx.AsyncClient, depth: int) -> None:
    body = '{"workflow": "support_triage", "input": ' + _nested(depth) + "}"
    answer = await app_client.post(
        "/api/runs", content=body, headers={"content-type": "application/json"}, auth=ALICE
    )
    assert answer.status_code == 422, answer.text[:300]
    assert set(answer.json()) == {"detail"}
    assert "nest" in answer.json()["detail"]


def _seed(settings: Settings) -> str:
    now = datetime.now(UTC)
    review_id = f"run-{uuid.uuid4().hex[:8]}:classify:1"
    row = ReviewItem(
        review_id=review_id,
        run_id=review_id.split(":")[0],
        workflow="support_triage",
        step="classify",
        tenant="acme",
        reason="low_confidence",
        summary="classify needs review",
        output={"category": "billing"},
        output_digest="sha256:" + "0" * 64,
        output_schema={"type": "object"},
        confidence_score=0.6,
        cost_usd=0.001,
        allowed_roles=["support", "lead"],
        opened_at=now,
        due_at=now + timedelta(hours=1),
        expires_at=now + timedelta(days=7),
    )
    with Session(get_engine(settings.resolved_database_url)) as session:
        session.add(row)
        session.commit()
    return review_id


@pytest.mark.parametrize("depth", DEPTHS)
async def test_deeply_nested_edited_output_is_a_422(
    app_client: httpx.AsyncClient, store_settings: Settings, depth: int
) -> None:
    review_id = _seed(store_settings)
    digest = "sha256:" + "0" * 64
    body = f'{{"kind": "edit", "output_digest": "{digest}", "edited_output": {_nested(depth)}}}'
    answer = await app_client.post(
        f"/api/reviews/{review_id}/decision",
        content=body,
        headers={"content-type": "application/json"},
        auth=ALICE,
    )
    assert answer.status_code == 422, answer.text[:300]
    assert set(answer.json()) == {"detail"}
    assert "nest" in answer.json()["detail"]
